"""Designate's database on the cloud's MariaDB: the database, its own user, the schema."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from devcloud.dns import layout as L
from devcloud.dns import venv
from devcloud.dns.layout import Layout
from devcloud.dns.waiting import DnsError

if TYPE_CHECKING:
    from devcloud.context import Context


def ensure(ctx: Context, lay: Layout) -> str:
    """Create database and user if missing; return Designate's SQLAlchemy URL (its own user)."""
    root_url = ctx.create_database(L.DB_NAME)
    db = ctx.mariadb
    statements = []
    # '%' and 'localhost': MariaDB may see a 127.0.0.1 connection as either.
    for host in ("%", "localhost"):
        user = f"'{L.DB_USER}'@'{host}'"
        statements += [
            f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{L.DB_PASSWORD}'",
            # keeps the password in step if the constant ever changes
            f"ALTER USER {user} IDENTIFIED BY '{L.DB_PASSWORD}'",
            f"GRANT ALL PRIVILEGES ON `{L.DB_NAME}`.* TO {user}",
        ]
    result = subprocess.run(
        venv.shim(lay, "sql", root_url, *statements),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DnsError(f"creating MariaDB user {L.DB_USER} on {db.host}:{db.port} failed:\n{result.stderr[-3000:]}")
    return f"mysql+pymysql://{L.DB_USER}:{L.DB_PASSWORD}@{db.host}:{db.port}/{L.DB_NAME}?charset=utf8mb4"


def sync(lay: Layout) -> None:
    """Run Designate's migrations (alembic; a no-op when the schema is current)."""
    argv = [
        str(lay.venv_bin("designate-manage")),
        "--config-file",
        str(lay.designate_conf),
        "database",
        "sync",
    ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise DnsError("designate-manage database sync did not finish in 300 s (MariaDB up?)") from exc
    if result.returncode != 0:
        raise DnsError(f"designate-manage database sync failed:\n{(result.stdout + result.stderr)[-4000:]}")
