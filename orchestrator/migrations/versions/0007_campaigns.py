"""DR drill campaigns and their drills

Revision ID: 0007_campaigns
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_campaigns"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dr_campaign",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ministry_id", sa.Uuid(), nullable=True),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.Uuid(), nullable=True),
        sa.Column("started_by_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ministry_id"], ["ministry.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dr_campaign_ministry_id", "dr_campaign", ["ministry_id"])
    op.create_index("ix_dr_campaign_finished_at", "dr_campaign", ["finished_at"])
    # One open scheduled campaign at a time.
    op.create_index(
        "uq_dr_campaign_open_schedule",
        "dr_campaign",
        ["scheduled"],
        unique=True,
        postgresql_where=sa.text("scheduled AND finished_at IS NULL"),
    )
    op.create_table(
        "dr_campaign_drill",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("ministry_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["dr_campaign.id"]),
        sa.ForeignKeyConstraint(["service_id"], ["service.id"]),
        sa.ForeignKeyConstraint(["ministry_id"], ["ministry.id"]),
        sa.ForeignKeyConstraint(["operation_id"], ["operation.id"]),
        sa.PrimaryKeyConstraint("campaign_id", "service_id"),
    )
    op.create_index("ix_dr_campaign_drill_ministry_id", "dr_campaign_drill", ["ministry_id"])
    op.create_index("ix_dr_campaign_drill_operation_id", "dr_campaign_drill", ["operation_id"])


def downgrade() -> None:
    op.drop_table("dr_campaign_drill")
    op.drop_table("dr_campaign")
