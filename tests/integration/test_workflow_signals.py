"""The workflow runner's shape, with workflows this test defines: a step that waits for an outside
signal parks the operation without holding a worker and resumes where it waited; a cleanup step
runs after a failure. Real PostgreSQL, a real procrastinate worker, the real runner and policy;
the steps themselves are the test's (they record what they saw)."""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from orchestrator import policy, workflows
from orchestrator.actors import SYSTEM, Actor
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from orchestrator.operations.models import Operation, OperationStatus, StepStatus
from orchestrator.ports import StepFailed
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus
from orchestrator.workflows import commands
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow
from tests.conftest import Platform, Tenant, active_service, make_tenant

pytestmark = pytest.mark.integration

SEEN: list[tuple[str, Any]] = []


def prepare(ctx: StepContext) -> None:
    SEEN.append(("prepare", None))


def install(ctx: StepContext) -> None:
    payload = ctx.wait_for("installed", "a technician racks the server and says so")
    SEEN.append(("install", payload))


def finish(ctx: StepContext) -> None:
    SEEN.append(("finish", ctx.signals.get("installed")))


def break_it(ctx: StepContext) -> None:
    raise StepFailed("the step broke on purpose")


def tidy(ctx: StepContext) -> None:
    SEEN.append(("tidy", None))


WAITS = Workflow(
    kind="test_install",
    steps=(Step("prepare", prepare), Step("install", install), Step("finish", finish)),
    signals={"installed": policy.Action.retry},
)
FAILS = Workflow(
    kind="test_cleanup",
    steps=(Step("break", break_it), Step("skipped", prepare), Step("tidy", tidy, always=True)),
    service_while_running=ServiceStatus.modifying,
    service_on_success=ServiceStatus.active,
    service_on_failure=ServiceStatus.failed,
)


@pytest.fixture
def test_workflows() -> Iterator[None]:
    SEEN.clear()
    for workflow in (WAITS, FAILS):
        workflows.register(workflow)
    yield
    for workflow in (WAITS, FAILS):
        workflows.unregister(workflow.kind)


def start(service_id: str, kind: str) -> uuid.UUID:
    with unit_of_work() as uow:
        service = services.lock(session=uow.session, service_id=uuid.UUID(service_id))
        operation = commands.start(session=uow.session, actor=SYSTEM, service=service, kind=kind)
        uow.commit()
        return operation.id


def row(operation_id: uuid.UUID) -> Operation:
    with unit_of_work() as uow:
        found = uow.session.get(Operation, operation_id)
        assert found is not None
        return found


def signal(actor: Actor, operation_id: uuid.UUID, name: str, payload: dict[str, Any]) -> None:
    with unit_of_work() as uow:
        commands.signal(session=uow.session, actor=actor, operation_id=operation_id, name=name, payload=payload)
        uow.commit()


def pending_jobs(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
            "AND task_name = 'tonle:run_operation'"
        ).fetchone()
    return int(found[0]) if found else 0


def test_a_step_waits_for_its_signal_without_a_worker_and_resumes_where_it_waited(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    test_workflows: None,
) -> None:
    from orchestrator.database.core import database_url

    service_id = active_service(client, tenant, platform, work)
    operation_id = start(service_id, "test_install")
    work()

    parked = row(operation_id)
    assert parked.status == OperationStatus.waiting
    steps = {s.name: s for s in parked.step_list()}
    assert steps["prepare"].status == StepStatus.succeeded
    assert steps["install"].status == StepStatus.waiting and steps["install"].waiting_for == "installed"
    assert steps["finish"].status == StepStatus.pending
    assert pending_jobs(database_url()) == 0  # parked: no job holds a worker
    assert SEEN == [("prepare", None)]

    # While it waits, the service is busy: nothing else starts on it.
    with pytest.raises(Conflict), unit_of_work() as uow:
        commands.run_action(session=uow.session, actor=SYSTEM, service_id=uuid.UUID(service_id), action="restart")

    other = make_tenant()
    with pytest.raises(NotFound):  # another ministry's operation does not exist for it
        signal(other.requester.actor, operation_id, "installed", {})
    with pytest.raises(PermissionDenied):  # the workflow says who may send it
        signal(tenant.requester.actor, operation_id, "installed", {})
    with pytest.raises(InvalidInput):
        signal(platform.operator.actor, operation_id, "powered_on", {})
    assert row(operation_id).status == OperationStatus.waiting  # refusals changed nothing

    signal(platform.operator.actor, operation_id, "installed", {"rack": "A1", "unit": 12})
    with pytest.raises(Conflict):  # delivered once: it is queued now, not waiting
        signal(platform.operator.actor, operation_id, "installed", {"rack": "B2"})
    work()

    done = row(operation_id)
    assert done.status == OperationStatus.succeeded
    assert all(s.status == StepStatus.succeeded for s in done.step_list())
    assert SEEN == [
        ("prepare", None),  # not run again on resume
        ("install", {"rack": "A1", "unit": 12}),
        ("finish", {"rack": "A1", "unit": 12}),
    ]
    events = client.get(f"/v1/operations/{operation_id}/events", headers=tenant.requester.headers).json()
    messages = [event["message"] for event in events]
    assert any("waits for 'installed'" in message for message in messages)
    assert any("signal 'installed' received" in message for message in messages)


def test_a_cleanup_step_runs_after_a_failure_and_the_service_takes_the_workflows_failure_status(
    client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    test_workflows: None,
) -> None:
    service_id = active_service(client, tenant, platform, work)
    operation_id = start(service_id, "test_cleanup")
    work()

    failed = row(operation_id)
    assert failed.status == OperationStatus.failed and failed.failed_step == "break"
    steps = {s.name: s.status for s in failed.step_list()}
    assert steps == {"break": StepStatus.failed, "skipped": StepStatus.pending, "tidy": StepStatus.succeeded}
    assert SEEN == [("tidy", None)]
    with unit_of_work() as uow:
        service = uow.session.get(Service, uuid.UUID(service_id))
        assert service is not None and service.status == ServiceStatus.failed


def test_the_signal_endpoint_refuses_what_no_waiting_step_asked_for(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    service_id = active_service(client, tenant, platform, work)
    operations = client.get(f"/v1/services/{service_id}/operations", headers=tenant.requester.headers)
    operation_id = operations.json()[0]["id"] if operations.status_code == 200 else None
    assert operation_id, operations.text
    # (provision takes `installed` since co-location, issue 12; `approved` it never takes)
    url = f"/v1/operations/{operation_id}/signals/approved"

    hidden = client.post(url, json={}, headers=other_tenant.requester.headers)
    assert hidden.status_code == 404, hidden.text
    unknown = client.post(url, json={"rack": "A1"}, headers=platform.operator.headers)
    assert unknown.status_code == 422 and unknown.json()["field"] == "name", unknown.text
    assert "provision operation takes no signal 'approved'" in unknown.json()["detail"]
    badly_named = client.post(
        f"/v1/operations/{operation_id}/signals/..%2Fx", json={}, headers=platform.operator.headers
    )
    assert badly_named.status_code in (404, 422), badly_named.text
    too_big = client.post(url, json={"note": "x" * 20_000}, headers=platform.operator.headers)
    assert too_big.status_code == 422 and too_big.json()["field"] == "body", too_big.text
    not_an_object = client.post(url, json=["approved"], headers=platform.operator.headers)
    assert not_an_object.status_code == 422, not_an_object.text
    after = client.get(f"/v1/operations/{operation_id}", headers=tenant.requester.headers).json()
    assert after["status"] == "succeeded"  # nothing the refusals touched
