"""The cloud's private MariaDB: own datadir, socket and port under the data directory.

Not the system service: nothing in /etc/mysql is read (`--no-defaults`), so a MariaDB the host
runs for other reasons is left alone. Root logs in through the socket (unix_socket auth, we run
as root); the services connect over TCP as root@127.0.0.1 with a password.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

from devcloud import procs
from devcloud.services.common import StageError, wait_for_port

if TYPE_CHECKING:
    from devcloud.context import Context

NAME = "mariadb"
_DB_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise StageError(f"{name} not found; is the Debian package mariadb-server installed?")
    return path


def start(ctx: Context) -> None:
    datadir = ctx.state_dir / "mariadb"
    if not (datadir / "mysql").is_dir():
        datadir.mkdir(parents=True, exist_ok=True)
        ctx.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(ctx.log_path("mariadb-install"), "ab") as log:
            subprocess.run(
                [
                    _binary("mariadb-install-db"),
                    "--no-defaults",
                    f"--datadir={datadir}",
                    "--user=root",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.start_process(
        NAME,
        [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={ctx.mariadb.socket}",
            f"--port={ctx.mariadb.port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={ctx.state_dir / 'mariadb' / 'mariadbd.pid'}",  # not in run/: that is ours
            "--skip-name-resolve",
            "--skip-log-bin",
            # Small: a laptop-sized cloud, several hundred connections from the services' pools.
            "--innodb-buffer-pool-size=128M",
            "--innodb-log-file-size=48M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=2000",
            "--performance-schema=OFF",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--log-error=",  # to stderr, i.e. logs/mariadb.log
        ],
    )
    wait_for_port(ctx, NAME, ctx.mariadb.port, timeout=60)
    # The socket appears a moment before root can log in through it.
    deadline = time.monotonic() + 30
    while True:
        try:
            sql(
                ctx,
                f"CREATE USER IF NOT EXISTS '{ctx.mariadb.user}'@'127.0.0.1' "
                f"IDENTIFIED BY '{ctx.mariadb.password}'; "
                f"GRANT ALL PRIVILEGES ON *.* TO '{ctx.mariadb.user}'@'127.0.0.1' WITH GRANT OPTION;",
            )
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def sql(ctx: Context, statements: str) -> str:
    """Run SQL as root over the private socket; return stdout."""
    result = subprocess.run(
        [
            _binary("mariadb"),
            "--no-defaults",
            "-uroot",
            f"--socket={ctx.mariadb.socket}",
            "-N",
            "-e",
            statements,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def create_database(ctx: Context, name: str) -> None:
    if not _DB_NAME.match(name):
        raise ValueError(f"bad database name {name!r}")
    sql(ctx, f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4;")


def stop(ctx: Context) -> None:
    # mariadbd shuts down cleanly on SIGTERM; give InnoDB time to flush.
    procs.stop(ctx, NAME, timeout=60)
