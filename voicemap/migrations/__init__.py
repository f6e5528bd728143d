"""Alembic's environment for voicemap's schema (see README here); run by ``voicemap.db``."""
