"""Where a service runs (primary or DR site), its DR copy's stack, and one failover or failback
waiting for approval per service

Revision ID: 0007_failover
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_failover"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "service", sa.Column("running_at", sa.String(32), nullable=False, server_default=sa.text("'primary'"))
    )
    op.add_column("service", sa.Column("dr_stack_name", sa.String(200), nullable=True))
    op.create_index(
        "uq_request_pending_dr",
        "request",
        ["service_id"],
        unique=True,
        postgresql_where=sa.text("kind IN ('failover', 'failback') AND status = 'pending_approval'"),
    )


def downgrade() -> None:
    op.drop_index("uq_request_pending_dr", table_name="request")
    op.drop_column("service", "dr_stack_name")
    op.drop_column("service", "running_at")
