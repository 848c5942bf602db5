"""Failures and crashes: failed steps, retries that resume, transient errors, dead workers.

The engine and configuration runner here are test doubles: these tests are about the pipeline's
bookkeeping, not about Pulumi or Ansible (which have their own tests against the real cloud).
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.jobs import queue
from orchestrator.noop import NoopConfigRunner, NoopEngine
from orchestrator.ports import Adapters, ChangeSummary, EventSink, PlaybookResult, PlaybookRun, ProgressEvent, StackSpec
from tests.conftest import Database, Platform, Tenant, order_and_approve

pytestmark = pytest.mark.integration


class CountingEngine(NoopEngine):
    """Test double at the engine boundary: counts calls so tests see what was (not) repeated."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.specs: list[StackSpec] = []

    def preview(self, stack: StackSpec, on_event: EventSink) -> ChangeSummary:
        self.calls.append("preview")
        self.specs.append(stack)
        return super().preview(stack, on_event)

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        self.calls.append("up")
        return {"endpoints": {"url": f"https://{stack.config['tonle:parameters']['domain']}/"}}


class BrokenPlaybookRunner(NoopConfigRunner):
    """Test double at the Ansible boundary: a playbook that fails until it is 'fixed'."""

    def __init__(self) -> None:
        self.fixed = False

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        if not self.fixed:
            on_event(
                ProgressEvent(
                    type="ansible.task",
                    message="TASK [web : install nginx] FAILED: No package matching 'nginx-nonexistent' is available",
                    level="error",
                )
            )
            return PlaybookResult(ok=False, failures=["web : install nginx"])
        return super().run(run, on_event)


class FlakyEngine(CountingEngine):
    """Test double: the cloud API times out on the first `up`, then works."""

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        self.calls.append("up")
        if self.calls.count("up") == 1:
            raise TimeoutError("compute API did not answer within 60 s")
        return {}


@pytest.fixture
def use_adapters() -> Iterator[Callable[..., Adapters]]:
    def install(**parts: Any) -> Adapters:
        adapters = noop_adapters(get_settings(), engine=parts.get("engine"), config=parts.get("config"))
        queue.set_adapters(adapters)
        return adapters

    yield install
    queue.set_adapters(None)


def test_a_failed_playbook_fails_at_configure_and_retry_resumes_there(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    use_adapters: Callable[..., Adapters],
) -> None:
    engine, runner = CountingEngine(), BrokenPlaybookRunner()
    use_adapters(engine=engine, config=runner)
    approved = order_and_approve(client, tenant, platform)
    work()

    op_url = f"/v1/operations/{approved['operation_id']}"
    operation = client.get(op_url, headers=tenant.requester.headers).json()
    assert operation["status"] == "failed"
    assert operation["failed_step"] == "configure"
    assert "web : install nginx" in operation["error"]
    assert {s["name"]: s["status"] for s in operation["steps"]} == {
        "plan": "succeeded",
        "apply": "succeeded",
        "install_devices": "succeeded",  # nothing to rack for web hosting
        "configure": "failed",
        "verify": "pending",
    }
    events = client.get(f"{op_url}/events", headers=tenant.requester.headers).json()
    assert any("nginx-nonexistent" in e["message"] and e["step"] == "configure" for e in events)
    service = client.get(f"/v1/services/{approved['service_id']}", headers=tenant.requester.headers).json()
    assert service["status"] == "failed"
    request = client.get(f"/v1/requests/{approved['id']}", headers=tenant.requester.headers).json()
    assert request["status"] == "failed"
    assert engine.calls == ["preview", "up"]
    config = engine.specs[0].config
    assert config["tonle:ministry"] == tenant.code and config["tonle:plan"] == "small"
    assert config["openstack:tenantName"] == f"tonle-{tenant.code}" and config["tonle:site"] == "primary"
    assert config["tonle:sizes"]["flavor"] == "m1.small"
    assert config["tonle:sshPublicKey"].startswith("ssh-ed25519 ")

    runner.fixed = True
    retried = client.post(f"{op_url}/retry", headers=platform.operator.headers)
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    work()

    operation = client.get(op_url, headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded" and operation["attempts"] == 2
    assert engine.calls == ["preview", "up"], "retry must not touch the stack again"
    assert (
        client.get(f"/v1/services/{approved['service_id']}", headers=tenant.requester.headers).json()["status"]
        == "active"
    )
    assert (
        client.get(f"/v1/requests/{approved['id']}", headers=tenant.requester.headers).json()["status"] == "fulfilled"
    )


def test_a_transient_error_is_retried_by_the_queue(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    use_adapters: Callable[..., Adapters],
) -> None:
    engine = FlakyEngine()
    use_adapters(engine=engine)
    approved = order_and_approve(client, tenant, platform)
    work()
    operation = client.get(f"/v1/operations/{approved['operation_id']}", headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded", operation
    assert engine.calls == ["preview", "up", "up"]
    events = client.get(f"/v1/operations/{approved['operation_id']}/events", headers=tenant.requester.headers).json()
    requeued = [e for e in events if e["type"] == "operation.queued" and "interrupted step apply" in e["message"]]
    assert len(requeued) == 1
    # The exception itself is for the server log, not for the ministry.
    assert not any("TimeoutError" in e["message"] for e in events)


def test_a_killed_worker_leaves_the_operation_resumable(
    client: httpx.Client, tenant: Tenant, platform: Platform, database: Database, work: Callable[[], None]
) -> None:
    # A real worker process whose engine takes 3 s per call, killed with SIGKILL mid-operation.
    env = {**os.environ, "TONLE_DATABASE_URL": database.url, "TONLE_NOOP_STEP_SECONDS": "3"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "portal_api.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        approved = order_and_approve(client, tenant, platform)
        op_url = f"/v1/operations/{approved['operation_id']}"
        deadline = time.monotonic() + 30
        while client.get(op_url, headers=tenant.requester.headers).json()["status"] != "running":
            assert time.monotonic() < deadline, "the worker never started the operation"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert client.get(op_url, headers=tenant.requester.headers).json()["status"] == "running"

    time.sleep(6)  # longer than TONLE_STALLED_AFTER_SECONDS: the dead worker's heartbeat is now stale

    async def recover() -> int:
        app = queue.get_app()
        async with app.open_async():
            return await queue.recover_stalled(app)

    assert asyncio.run(recover()) == 1
    work()
    operation = client.get(op_url, headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded", operation
    types = [e["type"] for e in client.get(f"{op_url}/events", headers=tenant.requester.headers).json()]
    assert "operation.worker_lost" in types and "operation.resumed" in types
