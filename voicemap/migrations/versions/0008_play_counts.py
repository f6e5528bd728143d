"""play_counts: how many times each clip was played, per day

One row per clip and day (the Asia/Shanghai calendar) holding a count, and nothing about
listeners: no address, no cookie, no time. Counted by the player's beacon
(``POST /api/clips/<id>/played``) with one upsert. ``clip_id`` is deliberately not a foreign
key: a deleted clip's counts stay (they hold nothing personal), so a venue's totals do not
shrink. The venue's rows go with the venue (ON DELETE CASCADE). A new table only.

Revision ID: 0008_play_counts
Revises: 0006_article_images
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_play_counts"
down_revision = "0007_judging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "play_counts",
        sa.Column("clip_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("venue_id", sa.String(64),
                  sa.ForeignKey("venues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_play_counts_venue_day", "play_counts", ["venue_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_play_counts_venue_day", table_name="play_counts")
    op.drop_table("play_counts")
