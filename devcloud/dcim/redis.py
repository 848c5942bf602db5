"""A private Redis for Nautobot (its cache, locks and Celery broker): Debian's `redis-server`,
our own port on 127.0.0.1, a password, nothing persisted, never the system instance."""

from __future__ import annotations

import os
import re
import shutil
import socket
from typing import TYPE_CHECKING

from devcloud.apt import apt_get
from devcloud.dcim import layout as L
from devcloud.dcim.common import DcimError, run, wait_for
from devcloud.dcim.layout import Layout

if TYPE_CHECKING:
    from devcloud.context import Context

#: Debian 12's Redis, pinned to its 7.0 series (the security updates of that series still
#: install; a release with another series must be tried before the pin moves).
PACKAGE = "redis-server"
PIN = "5:7.0.*"
SERIES = "7.0."
SBIN = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")


def binary() -> str | None:
    return shutil.which("redis-server", path=os.pathsep.join(SBIN))


def version() -> str | None:
    server = binary()
    if server is None:
        return None
    match = re.search(r"v=(\S+)", run([server, "--version"], "redis-server --version"))
    return match.group(1) if match else None


def ensure_installed(ctx: Context) -> None:
    """apt-get install the pinned redis-server when missing (root only, as `up` runs)."""
    if binary() is None:
        if os.geteuid() != 0:
            raise DcimError(f"redis-server missing; run as root or `apt-get install {PACKAGE}={PIN}`")
        ctx.progress("dcim", f"installing {PACKAGE}={PIN} from Debian")
        for args in (["update"], ["install", "-y", "--no-install-recommends", f"{PACKAGE}={PIN}"]):
            result = apt_get(args)
            ctx.logs_dir.mkdir(parents=True, exist_ok=True)
            with ctx.log_path("apt").open("a") as log:
                log.write(f"\n==== apt-get {' '.join(args)}\n{result.stdout}{result.stderr}")
            if result.returncode != 0:
                raise DcimError(f"apt-get {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    found = version()
    if found is None or not found.startswith(SERIES):
        raise DcimError(f"redis-server {found} is installed; devcloud/dcim is tried with the {SERIES}x series ({PIN})")


def answers(lay: Layout) -> bool:
    """AUTH and PING on our port come back +OK and +PONG."""
    try:
        with socket.create_connection((L.HOST, lay.redis_port), timeout=2) as conn:
            conn.sendall(f"AUTH {L.REDIS_PASSWORD}\r\nPING\r\n".encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = conn.recv(256)
                if not chunk:
                    break
                reply += chunk
            return reply.startswith(b"+OK\r\n+PONG")
    except OSError:
        return False


def start(ctx: Context, lay: Layout) -> None:
    server = binary()
    if server is None:
        raise DcimError("redis-server is not installed")
    lay.redis_dir.mkdir(parents=True, exist_ok=True)
    ctx.start_process(
        L.REDIS,
        [
            server,
            "--port",
            str(lay.redis_port),
            "--bind",
            L.HOST,
            "--unixsocket",
            "",
            "--requirepass",
            L.REDIS_PASSWORD,
            "--dir",
            str(lay.redis_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--supervised",
            "no",
            "--logfile",
            "",
        ],
    )
    wait_for(ctx, L.REDIS, f"PING on {L.HOST}:{lay.redis_port}", lambda: answers(lay), timeout=30)
