"""The local data centre for the `cloud` tier: brought up once per session if not running.

Fixture `devcloud` yields a `DevCloud` with openstacksdk connections built from the
clouds.yaml that `python -m devcloud up` writes: `.primary`, `.dr` (the two sites, as the
`tonle` member user) and `.admin`. A cloud the fixture started is stopped at the end of the
session (unless TONLE_DEVCLOUD_KEEP=1); one that was already running is left running.

Where this machine cannot host the local data centre (not root, not Debian, a missing tool or
piece), the tier skips with the reason. With TONLE_CLOUD_REQUIRED=1 (`.ci/run` sets it) every
such skip FAILS instead, with the same reason: CI must not pass green with the tier unrun.
`unavailable()` and `require()` do this for fixtures and tests outside this folder (the
security tier's cloud tests); the hook below does it for every test in this folder, including
`skipif` marks and skips inside tests.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

if TYPE_CHECKING:
    from devcloud.dcim.layout import Layout
    from tests.conftest import Database

REPO = Path(__file__).resolve().parents[2]
CLOUD_REQUIRED_ENV = "TONLE_CLOUD_REQUIRED"


def cloud_required() -> bool:
    return os.environ.get(CLOUD_REQUIRED_ENV) == "1"


def unavailable(reason: str) -> NoReturn:
    """The local data centre (or a piece a test needs) is missing: skip, or fail when required."""
    if cloud_required():
        pytest.fail(f"{CLOUD_REQUIRED_ENV}=1 and the cloud tier cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(condition: bool, reason: str) -> None:
    """`unavailable(reason)` unless `condition` holds."""
    if not condition:
        unavailable(reason)


# Where each of the local data centre's logs ended when the running test began.
_log_ends: dict[Path, int] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Remember where each of the local data centre's logs ends, to show what a failing test added."""
    _log_ends.clear()
    _log_ends.update({log: log.stat().st_size for log in (DEVCLOUD_DIR / "logs").glob("*.log")})


def _cloud_complaints(limit_per_log: int = 12, limit: int = 60) -> str:
    """The warnings and errors the local data centre's services logged since this test began: CI
    keeps no logs, and a stuck server or zone is explained there, not in the test's traceback."""
    lines: list[str] = []
    for log in sorted((DEVCLOUD_DIR / "logs").glob("*.log")):
        with log.open("rb") as f:
            f.seek(_log_ends.get(log, 0))
            added = f.read().decode(errors="replace").splitlines()
        complaints = [line for line in added if any(w in line for w in (" ERROR ", " WARNING ", "Traceback"))]
        lines += [f"{log.name}: {line[:400]}" for line in complaints[-limit_per_log:]]
    return "\n".join(lines[-limit:]) or "(none)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test carries the cloud's warnings and errors from its run. With the switch on, a
    skip of any test in this folder (a `skipif` mark, `pytest.skip` in a fixture or test,
    `importorskip`) is reported as a failure with its reason."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        report.sections.append(("local data centre: warnings and errors logged during this test", _cloud_complaints()))
    if not (report.skipped and cloud_required()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"{CLOUD_REQUIRED_ENV}=1 and the cloud tier cannot run: {reason}"


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


def dcim_layout() -> Layout:
    """The DCIM's layout in the cloud tier's data directory."""
    from devcloud.cli import Progress
    from devcloud.context import Context
    from devcloud.dcim.layout import Layout

    return Layout.of(Context(data_dir=DEVCLOUD_DIR, progress=Progress()))


def devcloud_up() -> bool:
    """Whether the local data centre answers (`python -m devcloud status`)."""
    return _run_devcloud("status").returncode == 0


def _connect(clouds_yaml: Path, name: str) -> Any:
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud=name))


@pytest.fixture(scope="session")
def devcloud() -> Iterator[DevCloud]:
    try:
        import openstack  # noqa: F401
    except ImportError as exc:
        unavailable(f"openstacksdk cannot be imported: {exc}")
    require(os.geteuid() == 0, "the local data centre needs root (private MariaDB/RabbitMQ, apt, bridges)")
    require(shutil.which("apt-get") is not None, "the local data centre needs a Debian host (apt-get)")
    started_here = False
    if not devcloud_up():
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
        with machines_released():
            _run_devcloud("down")


# `make test` runs the machine-layer tests in another process beside this tier (two_lanes.py).
# Their machines install through the apt-cacher-ng that `devcloud down` stops, so a cloud going
# down waits for them: they hold this lock shared, `down` takes it exclusive.
MACHINES_LOCK = DEVCLOUD_DIR / "machines-in-use.lock"
MACHINES_WAIT_S = 240  # below pytest-timeout's 300 s, which covers the last test's teardown


@contextmanager
def machines_in_use() -> Iterator[None]:
    """Held while a module's own machines run; see MACHINES_LOCK."""
    MACHINES_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with MACHINES_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield


@contextmanager
def machines_released() -> Iterator[None]:
    """Held while the cloud goes down: waits (up to MACHINES_WAIT_S) for other processes' machines."""
    MACHINES_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with MACHINES_LOCK.open("a") as lock:
        deadline = time.monotonic() + MACHINES_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    warnings.warn(f"machines of another test process still run after {MACHINES_WAIT_S} s", stacklevel=1)
                    break
                time.sleep(1)
        yield


@dataclass
class System:
    url: str
    logs: Path


@pytest.fixture(scope="module")
def system_settings() -> dict[str, str]:
    """Extra `TONLE_*` settings of a module's API and worker processes (override per module)."""
    return {}


@contextmanager
def running_system(database: Database, devcloud: DevCloud, logs: Path, settings: dict[str, str]) -> Iterator[System]:
    """`tonle serve` and `tonle worker` as separate processes, with the embedded engine and Ansible,
    against the local data centre, logging into `logs`."""
    from devcloud.orchestrator_env import orchestrator_env
    from tests.conftest import free_port, wait_until_ready

    port = free_port()
    env = {
        **os.environ,
        "TONLE_DATABASE_URL": database.url,
        "TONLE_ENGINE": "embedded",
        "TONLE_ANSIBLE": "ansible",
        "TONLE_CLOUDS_YAML": str(devcloud.clouds_yaml),
        "TONLE_LOG_LEVEL": "INFO",
        # The data centre's DNS, for servers and for the orchestrator, and its DCIM.
        **orchestrator_env(DEVCLOUD_DIR),
        **settings,
    }
    processes = []
    for name, argv in (("api", ["serve", "--port", str(port)]), ("worker", ["worker"])):
        with (logs / f"{name}.log").open("wb") as log:
            processes.append(
                subprocess.Popen([sys.executable, "-m", "portal_api.cli", *argv], env=env, stdout=log, stderr=log)
            )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, processes[0], logs / "api.log", timeout=90)
        yield System(url=url, logs=logs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def system(
    devcloud: DevCloud,
    database: Database,
    tmp_path_factory: pytest.TempPathFactory,
    system_settings: dict[str, str],
    baked_images: dict[str, dict[str, Any]],
) -> Iterator[System]:
    """`tonle serve` and `tonle worker` as separate processes, with the embedded engine and Ansible,
    against the local data centre; one pair per test module. Orders of web hosting, the CMS and
    e-mail boot the session's baked images (`baked_images`)."""
    with running_system(database, devcloud, tmp_path_factory.mktemp("system-logs"), system_settings) as running:
        yield running


BAKED_ROLES = ("web", "cms", "mail")
# How long the first module waits for the builds (inside its first test's timeout); a build still
# running then is left to the modules' workers (its job is recovered as stalled), and orders boot
# its image once it is ready.
BUILD_WAIT_S = 600
BAKED_IMAGES_ENV = "TONLE_TEST_IMAGES"  # "base": no builds, orders boot the base image


@pytest.fixture(scope="session")
def baked_images(
    devcloud: DevCloud, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dict[str, Any]]]:
    """The web, CMS and mail images, built once per session, all three at once, through the real
    pipeline (`POST /v1/images/builds`, the worker's build jobs) into the session's database, so
    every later order of those offerings boots them and skips the install phase: a build costs
    one install phase, each order on the image saves one. Role -> the image as `GET /v1/images`
    shows it; a role whose build failed is missing (its orders boot the base image, slower, and
    still pass), with the reason as a warning. A build that takes longer than BUILD_WAIT_S is
    left to the modules' workers. TONLE_TEST_IMAGES=base builds none."""
    from tests.conftest import make_account

    if os.environ.get(BAKED_IMAGES_ENV) == "base":
        yield {}
        return
    from sqlmodel import select

    from orchestrator.database.core import session_scope
    from orchestrator.images.models import BakedImage

    admin = make_account("admin", None)
    logs = tmp_path_factory.mktemp("image-build-logs")
    # The builds' own API and worker stop once the builds end: a worker left running would take
    # modules' operations from the shared queue without the modules' settings (`system_settings`).
    with running_system(database, devcloud, logs, {}) as running:
        built = _build_images(running, admin.headers, logs)
    yield built
    # The session's images go with its database, which records them: a cloud kept between
    # sessions would otherwise gather every session's images.
    with session_scope() as session:
        glance_ids = [image.glance_image_id for image in session.exec(select(BakedImage)) if image.glance_image_id]
    for glance_id in glance_ids:
        devcloud.admin.image.delete_image(glance_id, ignore_missing=True)


def _build_images(running: System, headers: dict[str, str], logs: Path) -> dict[str, dict[str, Any]]:
    built: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=running.url, headers=headers, timeout=60) as client:
        accepted = client.post("/v1/images/builds", json={"roles": list(BAKED_ROLES)})
        assert accepted.status_code == 202, accepted.text
        pending = {image["id"] for image in accepted.json()["builds"]}
        deadline = time.monotonic() + BUILD_WAIT_S
        while pending and time.monotonic() < deadline:
            time.sleep(5)
            for image_id in sorted(pending):
                image = client.get(f"/v1/images/{image_id}").json()
                if image["status"] == "building":
                    continue
                pending.discard(image_id)
                if image["status"] == "available":
                    built[image["role"]] = image
                else:
                    warnings.warn(f"image {image['name']} {image['status']}: {image['error']}", stacklevel=1)
        if pending:
            warnings.warn(
                f"image builds unfinished after {BUILD_WAIT_S} s, left to the modules' workers; see {logs}",
                stacklevel=1,
            )
    return built


@pytest.fixture(scope="session")
def nautobot(devcloud: DevCloud) -> dict[str, str]:
    """The local data centre's Nautobot (`url`, `token`, and `config`: the file naming them),
    waited for: `devcloud up` starts it last, in the background."""
    config = DEVCLOUD_DIR / "dcim.json"
    waited = subprocess.run(
        [sys.executable, "-m", "devcloud.dcim", "wait", "--timeout", "900"],
        cwd=REPO,
        env={**os.environ, "TONLE_DATA_DIR": str(DEVCLOUD_DIR.parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    if waited.returncode != 0 or not config.exists():
        output = f"{waited.stdout.strip()[-500:]} {waited.stderr.strip()[-1500:]}"
        unavailable(f"the local data centre's Nautobot is not up: {output}")
    data: dict[str, str] = json.loads(config.read_text())
    return {"url": data["url"], "token": data["token"], "config": str(config)}


@pytest.fixture(scope="module")
def nautobot_api(nautobot: dict[str, str]) -> Iterator[httpx.Client]:
    """Nautobot's REST API over plain HTTP: what an outside observer sees (not Tonle's adapter)."""
    headers = {"Authorization": f"Token {nautobot['token']}", "Accept": "application/json"}
    with httpx.Client(base_url=f"{nautobot['url']}/api", headers=headers, trust_env=False, timeout=60) as client:
        yield client
