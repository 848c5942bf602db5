"""The web console: users signed in through OpenID Connect, and each user's language

Revision ID: 0011_console
Revises: 0010_images
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_console"
down_revision: str | None = "0010_images"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `issuer|subject`: an identity provider's subject is unique only within its issuer.
    op.add_column("user", sa.Column("oidc_subject", sa.String(length=512), nullable=True))
    op.create_unique_constraint("uq_user_oidc_subject", "user", ["oidc_subject"])
    op.add_column("user", sa.Column("preferred_language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column("user", "preferred_language")
    op.drop_constraint("uq_user_oidc_subject", "user", type_="unique")
    op.drop_column("user", "oidc_subject")
