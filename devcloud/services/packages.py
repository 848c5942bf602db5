"""MariaDB and RabbitMQ from Debian's packages, installed by `up` itself on a fresh machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud.apt import apt_get
from devcloud.services.common import StageError

if TYPE_CHECKING:
    from devcloud.context import Context

PACKAGES = ("mariadb-server", "mariadb-client", "rabbitmq-server", "socat")


def _missing() -> list[str]:
    missing = []
    if not shutil.which("mariadbd", path="/usr/sbin:/usr/bin"):
        missing.append("mariadb-server")
    if not shutil.which("mariadb", path="/usr/bin"):
        missing.append("mariadb-client")
    if not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        missing.append("rabbitmq-server")
    if not shutil.which("socat", path="/usr/bin"):
        missing.append("socat")  # the S3 relay for instances (services/s3_gateway.py)
    return missing


def ensure(ctx: Context) -> None:
    missing = _missing()
    if not missing:
        return
    if os.geteuid() != 0:
        raise StageError(f"missing Debian packages {missing}; run as root or `apt-get install {' '.join(missing)}`")
    ctx.progress("packages", f"installing {' '.join(missing)} with apt-get")
    for args in (["update"], ["install", "-y", "--no-install-recommends", *missing]):
        result = apt_get(args)
        with ctx.log_path("apt").open("a") as log:
            log.write(f"\n==== apt-get {' '.join(args)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise StageError(f"apt-get {args[0]} failed: {result.stderr.strip()[-500:]}; see {ctx.log_path('apt')}")
    still = _missing()
    if still:
        raise StageError(f"apt-get did not provide {still}; see {ctx.log_path('apt')}")
