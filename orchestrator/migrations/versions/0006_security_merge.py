"""Join the security work's parallel migrations (domains, host keys, policy, tokens) into one head.

Revision ID: 0006
Revises: 0005_domains, 0005_host_keys, 0005_policy, 0005_tokens
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0005_domains", "0005_host_keys", "0005_policy", "0005_tokens")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
