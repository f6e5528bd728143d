"""judging: criteria per campaign, jurors, scores, the award plan, published results

A campaign gets its judging criteria with weights (``creativity:40,expression:30,city:30``),
an award plan (places per award for ``campaign award --auto``), the fewest jurors for a work
to be ranked, whether jurors also see works still pending review, and when its results were
published. A manager may be a juror of one campaign (``juror_campaign_id``). ``scores``
holds one row per (work, juror): the criterion scores (JSON) and their weighted mean.

Revision ID: 0007_judging
Revises: 0006_article_images
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_judging"
down_revision = "0006_article_images"
branch_labels = None
depends_on = None

CRITERIA = "creativity:40,expression:30,city:30"
PLAN = "gold:1,silver:1,bronze:1"


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("criteria", sa.Text, nullable=False,
                                         server_default=CRITERIA))
    op.add_column("campaigns", sa.Column("award_plan", sa.Text, nullable=False,
                                         server_default=PLAN))
    op.add_column("campaigns", sa.Column("min_jurors", sa.Integer, nullable=False,
                                         server_default="2"))
    op.add_column("campaigns", sa.Column("judge_pending", sa.Boolean, nullable=False,
                                         server_default=sa.false()))
    op.add_column("campaigns", sa.Column("results_published_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("managers") as batch:
        batch.add_column(sa.Column("juror_campaign_id", sa.String(64), nullable=True))
        batch.create_foreign_key("fk_managers_juror_campaign_id_campaigns", "campaigns",
                                 ["juror_campaign_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_managers_juror_campaign_id", ["juror_campaign_id"])
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("work_id", sa.String(32), sa.ForeignKey("works.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("juror_id", sa.Integer, sa.ForeignKey("managers.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("scores", sa.Text, nullable=False),
        sa.Column("weighted", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("work_id", "juror_id", name="uq_scores_work_juror"),
    )
    op.create_index("ix_scores_work_id", "scores", ["work_id"])
    op.create_index("ix_scores_juror_id", "scores", ["juror_id"])


def downgrade() -> None:
    op.drop_table("scores")
    with op.batch_alter_table("managers") as batch:
        batch.drop_index("ix_managers_juror_campaign_id")
        batch.drop_constraint("fk_managers_juror_campaign_id_campaigns", type_="foreignkey")
        batch.drop_column("juror_campaign_id")
    for name in ("results_published_at", "judge_pending", "min_jurors", "award_plan",
                 "criteria"):
        op.drop_column("campaigns", name)
