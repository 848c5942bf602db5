"""one permission policy: platform-wide automation flag; plan changes as requests

Revision ID: 0005_policy
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_policy"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user", sa.Column("platform_wide", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Automation accounts without a ministry were platform-wide by definition until now; keep them so
    # (the policy limits them to backups and drills).
    op.execute("UPDATE \"user\" SET platform_wide = true WHERE role = 'automation' AND ministry_id IS NULL")
    op.add_column("request", sa.Column("kind", sa.String(length=16), nullable=False, server_default="order"))
    # One plan change waiting for approval per service at most.
    op.create_index(
        "uq_request_pending_change",
        "request",
        ["service_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'modify' AND status = 'pending_approval'"),
    )


def downgrade() -> None:
    op.drop_index("uq_request_pending_change", table_name="request")
    op.drop_column("request", "kind")
    op.drop_column("user", "platform_wide")
