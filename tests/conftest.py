"""Shared fixtures: a real PostgreSQL (embedded), the API served on loopback, a worker."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

if TYPE_CHECKING:
    from orchestrator.actors import Actor

# Tests never touch the developer's own data directory.
os.environ.setdefault("TONLE_LOG_LEVEL", "WARNING")
# Retry at once and declare workers dead quickly, so recovery tests take seconds.
os.environ.setdefault("TONLE_JOB_RETRY_WAIT_SECONDS", "0")
os.environ.setdefault("TONLE_STALLED_AFTER_SECONDS", "5")
# Integration tests are about the API, queue and pipeline; the cloud tier runs the real engine.
os.environ.setdefault("TONLE_ENGINE", "noop")
# The drill schedule would drill every test's services behind its back; its test calls it directly.
os.environ.setdefault("TONLE_SCHEDULED_DRILLS_MAX_PARALLEL", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tests on machines of the machine layer run last. Under `make test` they run beside the
    # cloud tier (tests/support/two_lanes.py) and share the apt-cacher-ng of the local data centre
    # that the cloud tier's process brings up meanwhile.
    items.sort(key=lambda item: item.get_closest_marker("machines") is not None)  # stable


@dataclass(frozen=True)
class Database:
    url: str


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A fresh database on a real PostgreSQL 18, migrated to head."""
    from orchestrator.bootstrap import bootstrap
    from orchestrator.config import get_settings
    from orchestrator.database import core, migrate
    from orchestrator.database.embedded import ensure_database, start_embedded, with_database

    external = os.environ.get("TONLE_TEST_DATABASE_URL")
    if external:
        server_url = external
    else:
        # Not under pytest's temporary folder: that is mode 0700, and PostgreSQL runs as its own user.
        data_dir = Path(os.environ.get("TONLE_TEST_DATA_DIR", Path(__file__).parent.parent / ".tonle" / "test"))
        data_dir.mkdir(parents=True, exist_ok=True)
        server_url = start_embedded(data_dir, stop_on_exit=True)
    name = f"tonle_test_{uuid.uuid4().hex[:8]}"
    ensure_database(server_url, name)
    url = with_database(server_url, name)
    os.environ["TONLE_DATABASE_URL"] = url
    os.environ["TONLE_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    get_settings.cache_clear()
    core.reset_caches()
    migrate.upgrade(url)
    # This process defers jobs (service functions called in tests) and runs them (in-process workers).
    job_queue = bootstrap()
    job_queue.open()
    yield Database(url=url)
    job_queue.close()
    core.reset_caches()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving_api(database_url: str, log_dir: Path, **settings: str) -> Iterator[str]:
    """`tonle serve` in its own process on a loopback port, with extra `TONLE_*` settings; its URL."""
    port = free_port()
    log_file = log_dir / "api.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal_api.cli", "serve", "--port", str(port)],
            env={**os.environ, "TONLE_DATABASE_URL": database_url, "TONLE_LOG_LEVEL": "INFO", **settings},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, log_file, timeout=90)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def api_url(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real API: `tonle serve` in its own process on a loopback port."""
    with serving_api(database.url, tmp_path_factory.mktemp("api")) as url:
        yield url


def wait_until_ready(
    url: str,
    process: subprocess.Popen[bytes],
    log_file: Path,
    timeout: float,
    *,
    probe: str = "/readyz",
    what: str = "the API",
) -> None:
    """Wait for a process we started (`tonle serve` by default) to answer `probe` with 200; if it
    dies or is late, fail with its log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}{probe}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{what} did not start; its log:\n{log_file.read_text()[-3000:]}")
        time.sleep(0.1)


@dataclass
class Account:
    username: str
    role: str
    ministry_id: uuid.UUID | None
    token: str
    user_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def actor(self) -> "Actor":
        """The account as the orchestrator's services see it, for tests that call them in-process."""
        from orchestrator.actors import Actor, Role

        return Actor(user_id=self.user_id, username=self.username, role=Role(self.role), ministry_id=self.ministry_id)


@dataclass
class Tenant:
    ministry_id: uuid.UUID
    code: str
    requester: Account
    approver: Account
    automation: Account

    @property
    def dns_suffix(self) -> str:
        """The one DNS suffix the test ministry owns: its orders name this or names under it."""
        return f"{self.code}.gov.example"


@dataclass
class Platform:
    operator: Account
    admin: Account
    automation: Account


def make_account(role: str, ministry_id: uuid.UUID | None, *, platform_wide: bool = False) -> Account:
    from orchestrator.actors import SYSTEM, Role
    from orchestrator.auth import service as auth
    from orchestrator.auth.models import ApiTokenCreate, UserCreate
    from orchestrator.database.core import session_scope

    username = f"{role.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        user = auth.create_user(
            session=session,
            actor=SYSTEM,
            data=UserCreate(username=username, role=Role(role), ministry_id=ministry_id, platform_wide=platform_wide),
        )
        token = auth.issue_token(session=session, actor=SYSTEM, user_id=user.id, data=ApiTokenCreate(name="test"))
        session.commit()
    return Account(username=username, role=role, ministry_id=ministry_id, token=token.token, user_id=user.id)


def make_tenant(**quota: int) -> Tenant:
    from orchestrator.actors import SYSTEM
    from orchestrator.database.core import session_scope
    from orchestrator.ministry import service as ministries
    from orchestrator.ministry.models import MinistryCreate, QuotaLimits

    limits = QuotaLimits(
        **(
            quota
            or {"vcpu": 64, "ram_gb": 128, "storage_gb": 5000, "object_gb": 10000, "public_ips": 20, "mailboxes": 500}
        )
    )
    code = f"m-{uuid.uuid4().hex[:8]}"
    data = MinistryCreate(code=code, name=f"Ministry {code}", quota_limits=limits, dns_suffixes=[f"{code}.gov.example"])
    with session_scope() as session:
        ministry = ministries.create(session=session, actor=SYSTEM, data=data)
        session.commit()
    return Tenant(
        ministry_id=ministry.id,
        code=code,
        requester=make_account("requester", ministry.id),
        approver=make_account("ministry_approver", ministry.id),
        automation=make_account("automation", ministry.id),
    )


@pytest.fixture
def tenant(database: Database) -> Tenant:
    return make_tenant()


@pytest.fixture
def other_tenant(database: Database) -> Tenant:
    return make_tenant()


@pytest.fixture(scope="session")
def platform(database: Database) -> Platform:
    return Platform(
        operator=make_account("operator", None),
        admin=make_account("admin", None),
        automation=make_account("automation", None, platform_wide=True),
    )


@pytest.fixture
def client(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30.0) as http:
        yield http


def run_worker_until_idle(max_rounds: int = 10) -> None:
    """Run a real procrastinate worker in this process until no job is due.

    A worker with `wait=False` stops when nothing is due at that instant; a job retried a
    moment later (backoff) would be left behind, so look again while such jobs exist.
    """
    from orchestrator.database.core import database_url
    from orchestrator.jobs import queue

    for _ in range(max_rounds):
        queue.get_app().run_worker(
            wait=False, concurrency=4, install_signal_handlers=False, listen_notify=False, name="test-worker"
        )
        queue.get_app().open()  # the worker closed the pool this process defers jobs through
        with psycopg.connect(database_url()) as conn:
            row = conn.execute(
                "SELECT EXTRACT(EPOCH FROM MIN(scheduled_at) - NOW()) FROM procrastinate_jobs "
                "WHERE status = 'todo' AND task_name LIKE 'tonle:run_operation'"
            ).fetchone()
            pending = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND task_name = 'tonle:run_operation'"
            ).fetchone()
        if not pending or pending[0] == 0:
            return
        delay = float(row[0]) if row and row[0] is not None else 0.0
        time.sleep(min(max(delay, 0.05), 10.0))
    raise RuntimeError("operation jobs are still waiting after the worker ran repeatedly")


@pytest.fixture
def work(database: Database) -> Callable[[], None]:
    return run_worker_until_idle


def web_params(tenant: "Tenant") -> dict[str, object]:
    """Web-hosting parameters that the tenant may order: the domain is under its own DNS suffix."""
    return {"name": "portal", "domain": f"portal.{tenant.dns_suffix}", "admin_email": f"web@{tenant.dns_suffix}"}


def order_and_approve(
    client: httpx.Client, tenant: "Tenant", platform: "Platform", body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Order as the ministry's requester, approve as its head then an operator; the approved request."""
    request = client.post("/v1/requests", json=body or order_body(tenant), headers=tenant.requester.headers)
    assert request.status_code == 201, request.text
    request_id = request.json()["id"]
    first = client.post(
        f"/v1/requests/{request_id}/approvals",
        json={"decision": "approve", "reference": "MEMO-TEST"},
        headers=tenant.approver.headers,
    )
    assert first.status_code == 200, first.text
    approved: dict[str, Any] = client.post(
        f"/v1/requests/{request_id}/approvals", json={"decision": "approve"}, headers=platform.operator.headers
    ).json()
    assert approved["status"] == "approved", approved
    return approved


def active_service(client: httpx.Client, tenant: "Tenant", platform: "Platform", work: Callable[[], None]) -> str:
    """An ordered, approved and built service of the tenant, checked `active`; its id."""
    approved = order_and_approve(client, tenant, platform)
    work()
    service_id: str = approved["service_id"]
    assert client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()["status"] == "active"
    return service_id


def order_body(tenant: "Tenant", **overrides: object) -> dict[str, object]:
    """A web-hosting order the tenant may place (its domain is under the tenant's suffix)."""
    body: dict[str, object] = {"offering_id": "web-hosting", "plan": "small", "parameters": web_params(tenant)}
    body.update(overrides)
    return body
