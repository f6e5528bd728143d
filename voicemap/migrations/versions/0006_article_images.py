"""article_images: pictures uploaded for the information pages

One row per picture an administrator uploaded for an article, named by the SHA-256 of its
display rendition (made by the image safety pipeline: re-encoded JPEG, no metadata), which is
kept in the media store's ``renditions`` kind like a child's work's. The row is what makes the
file known to backups, restores and fsck (``backup.MEDIA_REFERENCES``) and what the media
route serves from: only a rendition listed here is served under ``/media/articles/``. A new
table only: nothing existing changes.

Revision ID: 0006_article_images
Revises: 0005_venue_provenance
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_article_images"
down_revision = "0005_venue_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_images",
        sa.Column("id", sa.String(64), primary_key=True),  # SHA-256 of the rendition
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("source_format", sa.String(8), nullable=False),
        sa.Column("uploaded_by", sa.Integer,
                  sa.ForeignKey("managers.id", ondelete="SET NULL")),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("article_images")
