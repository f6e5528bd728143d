"""The package's version: one place, read by setup.cfg (``attr:``), the API and backups."""

__version__ = "0.1.0"
