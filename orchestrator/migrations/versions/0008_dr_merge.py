"""Join the DR work's parallel migrations (reports, backups, failover, campaigns) into one head.

Revision ID: 0008
Revises: 0007_dr_reports, 0007_backups, 0007_failover, 0007_campaigns
"""

from collections.abc import Sequence

revision: str = "0008"
down_revision: str | Sequence[str] | None = ("0007_dr_reports", "0007_backups", "0007_failover", "0007_campaigns")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
