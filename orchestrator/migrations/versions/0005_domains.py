"""ministries own DNS suffixes

Revision ID: 0005_domains
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_domains"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing ministries start with no suffixes: they can order nothing that names DNS until an
    # admin says which names are theirs (PATCH /v1/ministries/{id}, or `tonle admin bootstrap`).
    op.add_column(
        "ministry",
        sa.Column("dns_suffixes", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
    )
    # The model sets the value; the default was only for the rows already there.
    op.alter_column("ministry", "dns_suffixes", server_default=None)


def downgrade() -> None:
    op.drop_column("ministry", "dns_suffixes")
