"""Drop the request table's index on ministry_id alone

uq_request_idempotency (ministry_id, idempotency_key) leads with the same column: it serves every
lookup by ministry, and the ministry's foreign-key checks, while each order paid for one more
index entry.

Revision ID: 0012_request_ministry_index
Revises: 0011_console
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_request_ministry_index"
down_revision: str | None = "0011_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_request_ministry_id", table_name="request")


def downgrade() -> None:
    op.create_index("ix_request_ministry_id", "request", ["ministry_id"], unique=False)
