"""Baked images: per offering role and site, built by the image pipeline and picked by orders

Revision ID: 0010_images
Revises: 0009_mail
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010_images"
down_revision: str | None = "0009_mail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "baked_image",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("glance_image_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("install_digest", sa.String(length=64), nullable=False),
        sa.Column("base_image", sa.String(length=255), nullable=False),
        sa.Column("packages", JSONB(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("build_seconds", sa.Float(), nullable=True),
        sa.Column("progress", sa.String(length=500), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_baked_image_role_site_status", "baked_image", ["role", "site", "status"])
    op.create_index(
        "uq_baked_image_building",
        "baked_image",
        ["role", "site"],
        unique=True,
        postgresql_where=sa.text("status = 'building'"),
    )


def downgrade() -> None:
    op.drop_table("baked_image")
