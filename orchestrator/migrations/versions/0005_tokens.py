"""tokens: default expiry, parent tokens, event stream leases

Revision ID: 0005_tokens
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_tokens"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("apitoken", sa.Column("parent_token_id", sa.Uuid(), nullable=True))
    op.create_foreign_key("fk_apitoken_parent_token_id", "apitoken", "apitoken", ["parent_token_id"], ["id"])
    op.create_index("ix_apitoken_parent_token_id", "apitoken", ["parent_token_id"])
    # Tokens issued before expiry became the default get the default lifetime from now on.
    op.execute(
        "UPDATE apitoken SET expires_at = now() + interval '90 days' WHERE expires_at IS NULL AND revoked_at IS NULL"
    )
    op.create_table(
        "event_stream_lease",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["apitoken.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_stream_lease_token_id", "event_stream_lease", ["token_id"])


def downgrade() -> None:
    op.drop_index("ix_event_stream_lease_token_id", table_name="event_stream_lease")
    op.drop_table("event_stream_lease")
    op.drop_index("ix_apitoken_parent_token_id", table_name="apitoken")
    op.drop_constraint("fk_apitoken_parent_token_id", "apitoken", type_="foreignkey")
    op.drop_column("apitoken", "parent_token_id")
