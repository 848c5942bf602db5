"""service keys, secrets and certificates; the internal CA

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICE_COLUMNS = (
    "ssh_public_key",
    "ssh_private_key_encrypted",
    "generated_secrets_encrypted",
    "tls_cert_pem",
    "tls_key_encrypted",
    "credentials_revealed_by",
)


def upgrade() -> None:
    for name in SERVICE_COLUMNS:
        op.add_column("service", sa.Column(name, sa.String(), nullable=True))
    op.add_column("service", sa.Column("credentials_revealed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "certificate_authority",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cert_pem", sa.String(), nullable=False),
        sa.Column("key_encrypted", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("id = 1", name="ck_certificate_authority_single_row"),
    )


def downgrade() -> None:
    op.drop_table("certificate_authority")
    op.drop_column("service", "credentials_revealed_at")
    for name in reversed(SERVICE_COLUMNS):
        op.drop_column("service", name)
