"""activities (with cancelled occurrences) and articles (information pages)

Activities at venues, once or weekly (an RFC 5545 RRULE subset), times in UTC; single
occurrences called off are kept in ``activity_cancellations`` so that calendars mark them
cancelled rather than lose them. Articles hold Markdown in Chinese and English and the
sanitised HTML made from it when saved. New tables only: nothing existing changes.

Revision ID: 0004_activities_articles
Revises: 0003_campaign_works
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_activities_articles"
down_revision = "0003_campaign_works"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("venue_id", sa.String(64), sa.ForeignKey("venues.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("title_zh", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("description_zh", sa.Text),
        sa.Column("description_en", sa.Text),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.Column("rrule", sa.Text),
        sa.Column("last_ends_at", TZ, nullable=False),
        sa.Column("weekdays", sa.Integer, nullable=False),
        sa.Column("min_age", sa.Integer),
        sa.Column("max_age", sa.Integer),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("booking_required", sa.Boolean, nullable=False),
        sa.Column("booking_url", sa.Text),
        sa.Column("accessibility", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("managers.id", ondelete="SET NULL")),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_activities_venue_id", "activities", ["venue_id"])
    op.create_index("ix_activities_last_ends_at", "activities", ["last_ends_at"])

    op.create_table(
        "activity_cancellations",
        sa.Column("activity_id", sa.Integer,
                  sa.ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("starts_at", TZ, primary_key=True),
        sa.Column("cancelled_at", TZ, nullable=False),
    )

    op.create_table(
        "articles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("section", sa.String(16), nullable=False),
        sa.Column("slug", sa.String(80), nullable=False),
        sa.Column("title_zh", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("body_zh", sa.Text, nullable=False),
        sa.Column("body_en", sa.Text, nullable=False),
        sa.Column("html_zh", sa.Text, nullable=False),
        sa.Column("html_en", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_by", sa.Integer, sa.ForeignKey("managers.id", ondelete="SET NULL")),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("section", "slug", name="uq_articles_section_slug"),
    )
    op.create_index("ix_articles_section", "articles", ["section"])


def downgrade() -> None:
    op.drop_index("ix_articles_section", "articles")
    op.drop_table("articles")
    op.drop_table("activity_cancellations")
    op.drop_index("ix_activities_last_ends_at", "activities")
    op.drop_index("ix_activities_venue_id", "activities")
    op.drop_table("activities")
