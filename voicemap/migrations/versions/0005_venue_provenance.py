"""venues: coordinate provenance and Chinese opening hours

Where each venue's coordinate came from and how good it is (``coord_source``,
``coord_datum``, ``coord_precision_m``, ``coord_point``, ``coord_note``), and its opening
hours in Chinese (``opening_hours_zh``), so that the database, the API and every export carry
what ``data/venues.geojson`` records. All nullable: venues imported before keep working and
get the values at their next import. Plain ``ADD COLUMN`` on both backends (no table copy,
which would drop SpatiaLite's geometry registration).

Revision ID: 0005_venue_provenance
Revises: 0004_activities_articles
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_venue_provenance"
down_revision = "0004_activities_articles"
branch_labels = None
depends_on = None

COLUMNS = (("opening_hours_zh", sa.Text), ("coord_source", sa.Text),
           ("coord_datum", sa.String(16)), ("coord_precision_m", sa.Integer),
           ("coord_point", sa.String(16)), ("coord_note", sa.Text))


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("venues", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place; batch mode would rebuild the table and lose the
    # geometry's registration with SpatiaLite.
    for name, _kind in reversed(COLUMNS):
        op.drop_column("venues", name)
