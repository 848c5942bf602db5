"""Drills through the API and a real worker, with test doubles at the cloud's boundaries (engine,
Ansible, health probe): the order of the steps, the copy's own stack at the DR site, cleanup and
the signed report after a failed check, and the action's parameters.

The drill against real servers, backups and the cloud's APIs is tests/cloud/test_drill.py.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from orchestrator.backup.models import RestorePoint
from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from orchestrator.jobs import queue
from orchestrator.noop import NoopEngine
from orchestrator.ports import EventSink, PlaybookResult, PlaybookRun, ProgressEvent, StackSpec, StepFailed
from orchestrator.services.models import Service
from portal_api.cli import app as cli
from tests.conftest import Platform, Tenant, active_service

pytestmark = pytest.mark.integration

CHECKSUM = "sha256:" + "ab" * 32
DRILL_STEPS = [
    "prepare",
    "build_copy",
    "configure_copy",
    "restore_data",
    "check_data",
    "check_health",
    "destroy_copy",
    "verify_cleanup",
    "report",
]


class RecordingEngine(NoopEngine):
    """Test double at the engine boundary: remembers each stack built and destroyed, with its config."""

    def __init__(self) -> None:
        super().__init__()
        self.built: dict[str, dict[str, Any]] = {}
        self.destroyed: list[str] = []
        self.stored: dict[str, dict[str, Any]] = {}

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        self.built[stack.name] = dict(stack.config)
        self.stored[stack.name] = {
            "hosts": {"web": {"address": "192.0.2.20", "groups": ["web"]}},
            "endpoints": {"public_address": "192.0.2.20"},
        }
        return self.stored[stack.name]

    def destroy(self, stack_name: str, on_event: EventSink) -> None:
        self.destroyed.append(stack_name)
        self.stored.pop(stack_name, None)

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return self.stored.get(stack_name, {})


class FailsFirstCopyBuild(RecordingEngine):
    """Test double: the copy's first build raises `error` (a cloud API timing out, a quota), then works."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.attempts = 0

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        if "tonle:copy" in stack.config:
            self.attempts += 1
            if self.attempts == 1:
                raise self.error
        return super().up(stack, on_event)


class RecordingRunner:
    name = "recording"

    def __init__(self) -> None:
        self.runs: list[PlaybookRun] = []
        self.failing: set[str] = set()  # playbooks that fail, as Ansible reports a failed task

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        self.runs.append(run)
        if run.playbook in self.failing:
            return PlaybookResult(ok=False, failures=[f"web: {run.playbook} task"])
        return PlaybookResult(ok=True)


@dataclass
class Health:
    """Test double of the probe: passes, or fails the way the https probe reports a bad answer."""

    passes: bool = True
    specs: list[dict[str, Any]] = field(default_factory=list)

    def check(
        self,
        spec: dict[str, Any],
        outputs: dict[str, Any],
        parameters: dict[str, Any],
        secret_vars: dict[str, Any],
        on_event: EventSink,
    ) -> bool:
        self.specs.append(spec)
        address = (outputs.get("endpoints") or {}).get("public_address")
        seen = "HTTP 200" if self.passes else "HTTP 502"
        on_event(ProgressEvent(type="health.probe", message=f"https://{parameters['domain']}/ via {address}: {seen}"))
        return self.passes


@dataclass
class Doubles:
    engine: RecordingEngine
    runner: RecordingRunner
    health: Health


@pytest.fixture
def doubles() -> Iterator[Doubles]:
    found = Doubles(RecordingEngine(), RecordingRunner(), Health())
    queue.set_adapters(noop_adapters(get_settings(), engine=found.engine, config=found.runner, health=found.health))
    yield found
    queue.set_adapters(None)


def built_service(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> str:
    """An active service; the doubles then forget its provisioning, so they show the drill alone."""
    service_id = active_service(client, tenant, platform, work)
    doubles.engine.built.clear()
    doubles.runner.runs.clear()
    doubles.health.specs.clear()
    return service_id


def add_restore_point(service_id: str, *, hours_ago: float = 2.0, checksum: str = CHECKSUM) -> RestorePoint:
    with session_scope() as session:
        service = session.get(Service, uuid.UUID(service_id))
        assert service is not None
        point = RestorePoint(
            service_id=service.id,
            ministry_id=service.ministry_id,
            host="web",
            snapshot_id=uuid.uuid4().hex * 2,
            taken_at=utcnow() - timedelta(hours=hours_ago),
            size_bytes=4096,
            checksum=checksum,
        )
        session.add(point)
        session.commit()
        return point


def drill(client: httpx.Client, tenant: Tenant, service_id: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return client.post(f"/v1/services/{service_id}/actions/drill", json=body, headers=tenant.requester.headers)


def finished(client: httpx.Client, tenant: Tenant, operation_id: str) -> dict[str, Any]:
    operation: dict[str, Any] = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
    return operation


def report_of(client: httpx.Client, tenant: Tenant, operation_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/operations/{operation_id}/report", headers=tenant.requester.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_drill_builds_checks_destroys_and_reports_a_copy_of_its_own_at_the_dr_site(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    point = add_restore_point(service_id, hours_ago=3)

    started = drill(client, tenant, service_id, {"expect_text": "Welcome"})
    assert started.status_code == 202, started.text
    operation_id = started.json()["id"]
    work()

    operation = finished(client, tenant, operation_id)
    assert operation["status"] == "succeeded", operation
    assert [step["name"] for step in operation["steps"]] == DRILL_STEPS
    # Its own stack, at the DR site, isolated; the production stack is neither rebuilt nor destroyed.
    copy_stack = f"{service['stack_name']}-drill-{uuid.UUID(operation_id).hex[:8]}"
    assert list(doubles.engine.built) == [copy_stack]
    config = doubles.engine.built[copy_stack]
    assert config["tonle:copy"] == "drill" and config["tonle:site"] == get_settings().dr_site
    assert config["tonle:copyId"] == uuid.UUID(operation_id).hex[:8]
    assert doubles.engine.destroyed == [copy_stack]
    # The offering's playbooks but the backup agent, then the restore and the data check.
    playbooks = [run.playbook for run in doubles.runner.runs]
    assert playbooks == ["baseline", "web", "restore", "data_check"]
    restore = doubles.runner.runs[2].extra_vars["restore"]
    assert restore == {"host": "web", "snapshot_id": point.snapshot_id, "checksum": CHECKSUM}
    assert doubles.health.specs[-1]["expect_text"] == "Welcome"
    assert client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()["status"] == "active"

    report = report_of(client, tenant, operation_id)
    assert report["kind"] == "drill" and report["passed"] is True and report["failed_check"] is None
    assert report["restore_point"]["id"] == str(point.id)
    assert report["restore_point"]["checksum"] == CHECKSUM
    # Three hours of data at risk, give or take the drill's own seconds.
    assert 3 * 3600 <= report["rpo_seconds"] < 3 * 3600 + 120
    assert 0 <= report["rto_seconds"] < 120
    assert report["target_rpo_seconds"] > 0 and report["target_rto_seconds"] > 0
    assert [step["name"] for step in report["steps"]] == DRILL_STEPS[:-1]
    assert all(step["status"] == "succeeded" and step["started_at"] for step in report["steps"])
    # The no-op adapters have no cloud to ask: cleanup is not claimed verified.
    assert report["cleanup_verified"] is None and report["leftovers"] == []
    assert report["started_by"] == {
        "kind": "user",
        "id": str(tenant.requester.user_id),
        "name": tenant.requester.username,
    }


def test_a_failed_health_check_fails_the_drill_naming_it_and_still_cleans_up_and_reports(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    add_restore_point(service_id)
    doubles.health.passes = False

    operation_id = drill(client, tenant, service_id).json()["id"]
    work()

    operation = finished(client, tenant, operation_id)
    assert operation["status"] == "failed"
    statuses = {step["name"]: step["status"] for step in operation["steps"]}
    assert statuses["check_data"] == "succeeded" and statuses["check_health"] == "failed"
    assert statuses["destroy_copy"] == statuses["verify_cleanup"] == statuses["report"] == "succeeded"
    assert len(doubles.engine.destroyed) == 1
    assert "health check https://portal." in operation["error"] and "HTTP 502" in operation["error"]

    report = report_of(client, tenant, operation_id)
    assert report["passed"] is False
    assert report["failed_check"].startswith("health check https://portal.") and "HTTP 502" in report["failed_check"]
    assert report["rto_seconds"] is None, "a copy that never passed its health check has no RTO"
    assert report["rpo_seconds"] > 0
    # The service it drilled is as it was.
    assert client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()["status"] == "active"


def test_a_failed_data_check_fails_the_drill_naming_it_before_the_copy_is_ever_probed(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    add_restore_point(service_id)
    doubles.runner.failing.add("data_check")

    operation_id = drill(client, tenant, service_id).json()["id"]
    work()

    operation = finished(client, tenant, operation_id)
    assert operation["status"] == "failed" and operation["failed_step"] == "check_data"
    statuses = {step["name"]: step["status"] for step in operation["steps"]}
    assert statuses["check_health"] == "pending" and doubles.health.specs == []
    assert statuses["destroy_copy"] == statuses["verify_cleanup"] == statuses["report"] == "succeeded"
    report = report_of(client, tenant, operation_id)
    assert report["passed"] is False
    assert report["failed_check"] == "data check: playbook data_check failed: web: data_check task"


def test_a_drill_without_a_restore_point_fails_at_once_and_is_still_reported(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    operation_id = drill(client, tenant, service_id).json()["id"]
    work()

    operation = finished(client, tenant, operation_id)
    assert operation["status"] == "failed" and operation["failed_step"] == "prepare"
    assert "no restore point" in operation["error"]
    assert doubles.engine.built == {} and doubles.engine.destroyed == []
    report = report_of(client, tenant, operation_id)
    assert report["passed"] is False and report["restore_point"] is None
    assert report["failed_check"].startswith("prepare: the service has no restore point")


def test_a_drill_of_a_named_restore_point_restores_that_one(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    older = add_restore_point(service_id, hours_ago=30)
    add_restore_point(service_id, hours_ago=1)

    operation_id = drill(client, tenant, service_id, {"restore_point": str(older.id)}).json()["id"]
    work()

    assert finished(client, tenant, operation_id)["status"] == "succeeded"
    restore = next(run for run in doubles.runner.runs if run.playbook == "restore")
    assert restore.extra_vars["restore"]["snapshot_id"] == older.snapshot_id
    assert report_of(client, tenant, operation_id)["rpo_seconds"] >= 30 * 3600


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"restore_point": "yesterday"}, "restore_point"),
        ({"snapshot": "abc"}, "snapshot"),
        ({"expect_text": ""}, "expect_text"),
    ],
)
def test_a_drill_refuses_parameters_it_does_not_take(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: Doubles,
    body: dict[str, Any],
    field: str,
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    response = drill(client, tenant, service_id, body)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_a_playbook_action_takes_no_json_parameters(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None], doubles: Doubles
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    response = client.post(
        f"/v1/services/{service_id}/actions/restart", json={"now": True}, headers=tenant.requester.headers
    )
    assert response.status_code == 422, response.text


def test_tonle_drill_starts_a_drill_of_the_named_restore_point(
    client: httpx.Client,
    api_url: str,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    doubles: Doubles,
) -> None:
    service_id = built_service(client, tenant, platform, work, doubles)
    point = add_restore_point(service_id, hours_ago=5)
    env = {"TONLE_API_URL": api_url, "TONLE_TOKEN": tenant.requester.token, "COLUMNS": "300"}
    result = CliRunner().invoke(cli, ["drill", service_id, "--restore-point", str(point.id)], env=env)
    assert result.exit_code == 0, result.output
    started = re.search(r"operation (\S+) \(drill\) queued", result.output)
    assert started, result.output
    work()
    assert finished(client, tenant, started.group(1))["status"] == "succeeded"
    assert report_of(client, tenant, started.group(1))["restore_point"]["id"] == str(point.id)


def test_an_interrupted_drill_resumes_with_its_first_start_time_and_restore_point(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    engine = FailsFirstCopyBuild(TimeoutError("compute API did not answer within 60 s"))
    queue.set_adapters(noop_adapters(get_settings(), engine=engine, config=RecordingRunner(), health=Health()))
    try:
        service_id = active_service(client, tenant, platform, work)
        first = add_restore_point(service_id, hours_ago=2)
        operation_id = drill(client, tenant, service_id).json()["id"]
        work()  # the interrupted job is retried after its backoff, in the same call
    finally:
        queue.set_adapters(None)

    operation = finished(client, tenant, operation_id)
    assert operation["status"] == "succeeded", operation
    assert engine.attempts == 2, "the build ran again after the interruption"
    events = client.get(f"/v1/operations/{operation_id}/events", headers=tenant.requester.headers).json()
    assert any(e["type"] == "operation.resumed" or "interrupted step build_copy" in e["message"] for e in events)
    report = report_of(client, tenant, operation_id)
    assert report["restore_point"]["id"] == str(first.id)
    # Measured from the drill's real start, before the interruption, not from the resumed run.
    prepared = next(step for step in operation["steps"] if step["name"] == "prepare")
    assert datetime.fromisoformat(report["started_at"]) <= datetime.fromisoformat(prepared["finished_at"])


def test_a_retried_drill_whose_copy_was_destroyed_builds_no_copy_nobody_would_destroy(
    client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    engine = FailsFirstCopyBuild(StepFailed("quota exceeded for instances"))
    queue.set_adapters(noop_adapters(get_settings(), engine=engine, config=RecordingRunner(), health=Health()))
    try:
        service_id = active_service(client, tenant, platform, work)
        add_restore_point(service_id)
        operation_id = drill(client, tenant, service_id).json()["id"]
        work()
        assert finished(client, tenant, operation_id)["failed_step"] == "build_copy"
        # An operator retries it: it would resume at the build, after its cleanup has run for good.
        retried = client.post(f"/v1/operations/{operation_id}/retry", headers=platform.operator.headers)
        assert retried.status_code == 202, retried.text
        work()
    finally:
        queue.set_adapters(None)

    operation = finished(client, tenant, operation_id)
    assert operation["status"] == "failed" and "destroyed already" in operation["error"]
    assert engine.attempts == 1, "no copy was built that no later step would destroy"
