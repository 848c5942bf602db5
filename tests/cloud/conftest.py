"""The local data centre for the `cloud` tier: brought up once per session if not running.

Fixture `devcloud` yields a `DevCloud` with openstacksdk connections built from the
clouds.yaml that `python -m devcloud up` writes: `.primary`, `.dr` (the two sites, as the
`tonle` member user) and `.admin`. A cloud the fixture started is stopped at the end of the
session (unless TONLE_DEVCLOUD_KEEP=1); one that was already running is left running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _devcloud_dir() -> Path:
    base = Path(os.environ.get("TONLE_DATA_DIR", ".tonle"))
    return (base if base.is_absolute() else REPO / base) / "devcloud"


# Fixed at import: other fixtures (the database one) point TONLE_DATA_DIR at a temporary
# folder later in the session, and the cloud must not follow it there.
DEVCLOUD_DIR = _devcloud_dir()
UP_TIMEOUT_S = 900


@dataclass
class DevCloud:
    clouds_yaml: Path
    primary: Any  # openstack.connection.Connection
    dr: Any
    admin: Any


def _run_devcloud(command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TONLE_DATA_DIR": str(DEVCLOUD_DIR.parent)}
    return subprocess.run(
        [sys.executable, "-m", "devcloud", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT_S,
        check=False,
    )


def _connect(clouds_yaml: Path, name: str) -> Any:
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud=name))


@pytest.fixture(scope="session")
def devcloud() -> Iterator[DevCloud]:
    pytest.importorskip("openstack")
    if os.geteuid() != 0:
        pytest.skip("the local data centre needs root (private MariaDB/RabbitMQ, apt, bridges)")
    if shutil.which("apt-get") is None:
        pytest.skip("the local data centre needs a Debian host (apt-get)")
    started_here = False
    if _run_devcloud("status").returncode != 0:
        result = _run_devcloud("up")
        started_here = True
        if result.returncode != 0:
            _run_devcloud("down")  # leave no half-started cloud holding the ports
            pytest.fail(f"`python -m devcloud up` failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    clouds_yaml = DEVCLOUD_DIR / "clouds.yaml"
    cloud = DevCloud(
        clouds_yaml=clouds_yaml,
        primary=_connect(clouds_yaml, "tonle-primary"),
        dr=_connect(clouds_yaml, "tonle-dr"),
        admin=_connect(clouds_yaml, "tonle-admin"),
    )
    yield cloud
    for conn in (cloud.primary, cloud.dr, cloud.admin):
        conn.close()
    # Stop what this session started: a cloud left running from a CI clone that is then
    # deleted would hold the (fixed) ports with no data directory left to stop it from.
    # Start it yourself (`make devcloud-up`), or set TONLE_DEVCLOUD_KEEP=1, to keep it.
    if started_here and os.environ.get("TONLE_DEVCLOUD_KEEP") != "1":
        _run_devcloud("down")
