"""embedded engine checkpoints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:00:00

One row per stack (its outputs, version and last operation) and one row per resource the
embedded engine manages, written after every step. Secret values inside the JSON columns are
Fernet ciphertext (see pulumi_embedded/secrets.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_stack",
        sa.Column("name", sa.String(length=200), primary_key=True),
        sa.Column("outputs", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_operation", sa.String(length=32), nullable=True),
        sa.Column("last_result", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "engine_resource",
        sa.Column("key", sa.String(length=32), primary_key=True),
        sa.Column(
            "stack", sa.String(length=200), sa.ForeignKey("engine_stack.name", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("urn", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("state", postgresql.JSONB(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_engine_resource_stack", "engine_resource", ["stack", "seq"])


def downgrade() -> None:
    op.drop_index("ix_engine_resource_stack", table_name="engine_resource")
    op.drop_table("engine_resource")
    op.drop_table("engine_stack")
