"""backup policies and restore points

Revision ID: 0007_backups
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_backups"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = True) -> "sa.Column[Any]":
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "backup_policy",
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("ministry_id", sa.Uuid(), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("backup_every_hours", sa.Integer(), nullable=False),
        sa.Column("retention", postgresql.JSONB(), nullable=False),
        sa.Column("rpo_target_seconds", sa.Integer(), nullable=False),
        sa.Column("rto_target_seconds", sa.Integer(), nullable=False),
        sa.Column("drill_every_days", sa.Integer(), nullable=False),
        _at("next_backup_due_at"),
        _at("last_backup_at"),
        sa.Column("last_backup_operation_id", sa.Uuid(), nullable=True),
        _at("last_missed_at"),
        sa.Column("last_missed_reason", sa.String(), nullable=True),
        _at("last_check_at"),
        sa.Column("last_check_ok", sa.Boolean(), nullable=True),
        sa.Column("last_check_detail", sa.String(), nullable=True),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["service.id"]),
        sa.ForeignKeyConstraint(["ministry_id"], ["ministry.id"]),
        sa.PrimaryKeyConstraint("service_id"),
    )
    op.create_index("ix_backup_policy_ministry_id", "backup_policy", ["ministry_id"])
    op.create_index("ix_backup_policy_next_backup_due_at", "backup_policy", ["next_backup_due_at"])
    op.create_table(
        "restore_point",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("ministry_id", sa.Uuid(), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        _at("taken_at", nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=100), nullable=False),
        _at("pruned_at"),
        sa.Column("operation_id", sa.Uuid(), nullable=True),
        _at("created_at", nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["service.id"]),
        sa.ForeignKeyConstraint(["ministry_id"], ["ministry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("service_id", "snapshot_id"),
    )
    op.create_index("ix_restore_point_service_id", "restore_point", ["service_id"])
    op.create_index("ix_restore_point_ministry_id", "restore_point", ["ministry_id"])


def downgrade() -> None:
    op.drop_table("restore_point")
    op.drop_table("backup_policy")
