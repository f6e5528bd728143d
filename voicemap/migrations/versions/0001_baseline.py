"""Baseline: the schema of the last release without migrations (e0db993).

venues (with its WGS-84 point and spatial index), managers, manager_venues and clips, as
``models.Base.metadata.create_all`` and the backends made them, DDL for DDL: a database that
code created is adopted at this revision unchanged (``voicemap.db.upgrade`` stamps it). The
tables are written out here, not taken from ``models``, so that this revision stays what it
is as the models grow.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from voicemap import backends

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    bind = op.get_bind()
    backend = backends.select(bind)
    backend.setup(bind)  # PostGIS: CREATE EXTENSION; SpatiaLite: InitSpatialMetaData(WGS-84)

    op.create_table(
        "venues",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name_zh", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("district", sa.String(32)),
        sa.Column("address_zh", sa.Text),
        sa.Column("address_en", sa.Text),
        sa.Column("website", sa.Text),
        sa.Column("opening_hours", sa.Text),
        sa.Column("description_zh", sa.Text),
        sa.Column("description_en", sa.Text),
        sa.Column("min_age", sa.Integer),
        sa.Column("max_age", sa.Integer),
        sa.Column("step_free", sa.Boolean),
        sa.Column("stroller_friendly", sa.Boolean),
        sa.Column("baby_care_room", sa.Boolean),
        # On SpatiaLite GeoAlchemy2 registers the column with RecoverGeometryColumn.
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_venues_category", "venues", ["category"])

    op.create_table(
        "managers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TZ, nullable=False),
    )

    op.create_table(
        "manager_venues",
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("managers.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("venue_id", sa.String(64), sa.ForeignKey("venues.id", ondelete="CASCADE"),
                  primary_key=True),
    )

    op.create_table(
        "clips",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("venue_id", sa.String(64), sa.ForeignKey("venues.id"), nullable=False),
        sa.Column("lang", sa.String(16), nullable=False),
        sa.Column("narrator_name", sa.String(40), nullable=False),
        sa.Column("narrator_age", sa.Integer),
        sa.Column("synthetic", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("title", sa.Text),
        sa.Column("transcript", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reject_reason", sa.Text),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("loudness_lufs", sa.Float, nullable=False),
        sa.Column("true_peak_dbtp", sa.Float, nullable=False),
        sa.Column("peaks", sa.Text, nullable=False),
        sa.Column("audio_sha256", sa.String(64), nullable=False),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("original_format", sa.String(32), nullable=False),
        sa.Column("uploaded_by", sa.Integer,
                  sa.ForeignKey("managers.id", ondelete="SET NULL")),
        sa.Column("uploaded_at", TZ, nullable=False),
        sa.Column("consent_by", sa.Text, nullable=False),
        sa.Column("consent_at", TZ, nullable=False),
        sa.Column("reviewed_by", sa.Integer,
                  sa.ForeignKey("managers.id", ondelete="SET NULL")),
        sa.Column("reviewed_at", TZ),
    )
    for column in ("audio_sha256", "original_sha256", "status", "venue_id"):
        op.create_index(f"ix_clips_{column}", "clips", [column])

    # GiST on PostGIS; SpatiaLite's R*Tree idx_venues_geom with its triggers.
    backend.create_spatial_index(bind)


def downgrade() -> None:
    """Drop the tables (the spatial extension and its metadata stay)."""
    op.drop_table("clips")
    op.drop_table("manager_venues")
    op.drop_table("managers")
    if op.get_bind().dialect.name == "sqlite":  # the geometry's metadata, index and triggers
        op.execute("SELECT DisableSpatialIndex('venues', 'geom')")
        op.execute("DROP TABLE IF EXISTS idx_venues_geom")
        op.execute("SELECT DiscardGeometryColumn('venues', 'geom')")
        # Foreign keys are off while migrating, so what their cascade would remove goes here.
        for table in ("auth", "field_infos", "statistics", "time"):
            op.execute(f"DELETE FROM geometry_columns_{table} WHERE f_table_name = 'venues'")
    op.drop_table("venues")
