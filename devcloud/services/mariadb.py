"""The cloud's private MariaDB: own datadir, socket and port under the data directory."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devcloud.context import Context


def create_database(ctx: Context, name: str) -> None:
    raise NotImplementedError("coming in the next commit")
