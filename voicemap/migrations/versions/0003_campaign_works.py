"""campaigns and works: "Me and my city", children's works submitted by guardians

A campaign (slug id, titles, dates, kinds, age groups, status) and its works: the child's
first name and age (and the age group derived from it), the story, the consent record
(private), a withdrawal-code hash, review state, the files (archived original, image
renditions, a song's MP3) and a WGS-84 point (a venue's, or coarsened to ~500 m).

Revision ID: 0003_campaign_works
Revises: 0002_manager_tokens
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003_campaign_works"
down_revision = "0002_manager_tokens"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title_zh", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("description_zh", sa.Text),
        sa.Column("description_en", sa.Text),
        sa.Column("opens_at", TZ, nullable=False),
        sa.Column("closes_at", TZ, nullable=False),
        sa.Column("kinds", sa.Text, nullable=False),
        sa.Column("age_groups", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "works",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("campaign_id", sa.String(64), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("narrator_name", sa.String(40), nullable=False),
        sa.Column("narrator_age", sa.Integer, nullable=False),
        sa.Column("age_group", sa.String(16), nullable=False),
        sa.Column("district", sa.String(32)),
        sa.Column("story", sa.Text, nullable=False),
        sa.Column("venue_id", sa.String(64), sa.ForeignKey("venues.id")),
        # On SpatiaLite GeoAlchemy2 registers the column with RecoverGeometryColumn.
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("synthetic", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reject_reason", sa.Text),
        sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("flag_reason", sa.Text),
        sa.Column("award", sa.String(16)),
        sa.Column("consent_judging", sa.Boolean, nullable=False),
        sa.Column("consent_public", sa.Boolean, nullable=False),
        sa.Column("consent_by", sa.Text, nullable=False),
        sa.Column("guardian_contact", sa.Text, nullable=False),
        sa.Column("consent_at", TZ, nullable=False),
        sa.Column("withdraw_hash", sa.String(64), nullable=False),
        sa.Column("original_sha256", sa.String(64)),
        sa.Column("original_format", sa.String(32)),
        sa.Column("thumb_sha256", sa.String(64)),
        sa.Column("thumb_type", sa.String(32)),
        sa.Column("thumb_width", sa.Integer),
        sa.Column("thumb_height", sa.Integer),
        sa.Column("display_sha256", sa.String(64)),
        sa.Column("display_type", sa.String(32)),
        sa.Column("display_width", sa.Integer),
        sa.Column("display_height", sa.Integer),
        sa.Column("audio_sha256", sa.String(64)),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("reviewed_by", sa.Integer,
                  sa.ForeignKey("managers.id", ondelete="SET NULL")),
        sa.Column("reviewed_at", TZ),
    )
    for column in ("campaign_id", "kind", "age_group", "venue_id", "status", "award",
                   "original_sha256", "thumb_sha256", "display_sha256", "audio_sha256"):
        op.create_index(f"ix_works_{column}", "works", [column])
    # the public condition, then the gallery's order (newest first)
    op.create_index("ix_works_public", "works",
                    ["status", "consent_public", "flagged", "submitted_at", "id"])


def downgrade() -> None:
    """Drop the works and campaigns (and, on SpatiaLite, the geometry's metadata)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("SELECT DiscardGeometryColumn('works', 'geom')")
        for table in ("auth", "field_infos", "statistics", "time"):
            op.execute(f"DELETE FROM geometry_columns_{table} WHERE f_table_name = 'works'")
    op.drop_table("works")
    op.drop_table("campaigns")
