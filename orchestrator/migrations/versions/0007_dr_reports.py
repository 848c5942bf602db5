"""dr reports: signed, hash-chained, append-only (a trigger refuses UPDATE, DELETE and TRUNCATE)

Revision ID: 0007_dr_reports
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_dr_reports"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dr_report",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column("ministry_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operation.id"]),
        sa.ForeignKeyConstraint(["ministry_id"], ["ministry.id"]),
        sa.ForeignKeyConstraint(["service_id"], ["service.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("operation_id"),
        sa.UniqueConstraint("prev_hash"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_dr_report_ministry_id", "dr_report", ["ministry_id"])
    op.create_index("ix_dr_report_service_id", "dr_report", ["service_id"])
    # Append-only in the database itself, not only in the code: whoever can write SQL as the
    # application still cannot rewrite a report without first disabling this trigger (which
    # `tonle dr verify` would then catch through the hashes and signatures).
    op.execute(
        """
        CREATE FUNCTION dr_report_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'dr_report is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER dr_report_append_only BEFORE UPDATE OR DELETE ON dr_report "
        "FOR EACH ROW EXECUTE FUNCTION dr_report_append_only()"
    )
    op.execute(
        "CREATE TRIGGER dr_report_no_truncate BEFORE TRUNCATE ON dr_report "
        "FOR EACH STATEMENT EXECUTE FUNCTION dr_report_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS dr_report_no_truncate ON dr_report")
    op.execute("DROP TRIGGER IF EXISTS dr_report_append_only ON dr_report")
    op.drop_index("ix_dr_report_service_id", table_name="dr_report")
    op.drop_index("ix_dr_report_ministry_id", table_name="dr_report")
    op.drop_table("dr_report")
    op.execute("DROP FUNCTION IF EXISTS dr_report_append_only()")
