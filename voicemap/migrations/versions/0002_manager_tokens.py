"""managers: revoked_at and token_issued_at (token revocation and rotation)

``voicemap managers revoke`` sets ``revoked_at``: the token stops working at once on every
worker; ``voicemap managers rotate`` issues a new token and records when. Both nullable, so
existing managers keep working (their token's issue time is unknown: NULL).

Revision ID: 0002_manager_tokens
Revises: 0001_baseline
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_manager_tokens"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("managers") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("token_issued_at", sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("managers") as batch:
        batch.drop_column("token_issued_at")
        batch.drop_column("revoked_at")
