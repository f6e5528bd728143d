"""A venue's properties by type, in the order exports write them (``id`` and the geometry are
handled apart).

Plain tuples, standard library only, so that the pure modules (``exchange``) and the backends'
SQL name them without importing the ORM models (and GeoAlchemy2): a GeoJSON export from the
command line then loads neither. ``models`` defines the columns and re-exports these; a test
checks the two agree.
"""

from __future__ import annotations

VENUE_TEXT_FIELDS = ("name_zh", "name_en", "category", "district", "address_zh", "address_en",
                     "website", "opening_hours", "opening_hours_zh", "description_zh",
                     "description_en", "coord_source", "coord_datum", "coord_point",
                     "coord_note")
VENUE_INT_FIELDS = ("min_age", "max_age", "coord_precision_m")
VENUE_BOOL_FIELDS = ("step_free", "stroller_friendly", "baby_care_room")
VENUE_FIELDS = VENUE_TEXT_FIELDS + VENUE_INT_FIELDS + VENUE_BOOL_FIELDS
