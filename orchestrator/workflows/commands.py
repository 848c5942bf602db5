"""What callers ask of operations and services: start a workflow, retry one, signal a waiting one,
decommission, resize, run a day-2 action. None of these commits: the caller's unit of work does."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from orchestrator import policy, quota, workflows
from orchestrator.actors import Actor
from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import Plan
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.operations import outbox, uploads
from orchestrator.operations import service as operations
from orchestrator.operations.models import IN_PROGRESS, Operation, OperationKind, OperationStatus, StepStatus
from orchestrator.requests import service as requests
from orchestrator.requests.models import Request, RequestKind
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus
from orchestrator.workflows import get as get_workflow

ARCHIVE_TYPES = uploads.ARCHIVE_TYPES


def retry(*, session: Session, actor: Actor, operation_id: uuid.UUID) -> Operation:
    """Put a failed operation back in the queue; it resumes at the step that failed."""
    operation = operations.lock(session=session, operation_id=operation_id, actor=actor)
    policy.require(actor, policy.Action.retry, ministry_id=operation.ministry_id)
    if not get_workflow(operation.kind).retryable:
        raise Conflict(
            f"a failed {operation.kind} is not resumed: its cleanup ran and its report is signed; start a new one",
            current_state=operation.status,
        )
    operations.transition(
        session=session, actor=actor, operation=operation, target=OperationStatus.queued, reason="retry requested"
    )
    service = services.lock(session=session, service_id=operation.service_id)
    while_running = get_workflow(operation.kind).service_while_running
    if service.status == ServiceStatus.failed and while_running is not None:
        services.transition(session=session, actor=actor, service=service, target=while_running, reason="retry")
    if operation.request_id:  # an order's provision, or an approved plan change
        requests.on_operation_retried(session=session, actor=actor, request_id=operation.request_id)
    outbox.enqueue_after_commit(session, operation.id)
    return operation


def start(
    *,
    session: Session,
    actor: Actor,
    service: Service,
    kind: str,
    parameters: dict[str, Any] | None = None,
    request_id: uuid.UUID | None = None,
) -> Operation:
    """Queue an operation of `kind` on a service the caller has locked and checked; the service
    takes the status its workflow has while running."""
    while_running = get_workflow(kind).service_while_running
    if while_running is not None and service.status != while_running:
        services.transition(session=session, actor=actor, service=service, target=while_running)
    return operations.create(
        session=session, actor=actor, service=service, kind=kind, parameters=parameters, request_id=request_id
    )


def signal(*, session: Session, actor: Actor, operation_id: uuid.UUID, name: str, payload: dict[str, Any]) -> Operation:
    """Deliver an outside signal (a server installed, a failover approved) to a waiting operation,
    which is queued again and resumes at the step that waited."""
    operation = operations.lock(session=session, operation_id=operation_id, actor=actor)
    workflow = get_workflow(operation.kind)
    if name not in workflow.signals:
        known = ", ".join(sorted(workflow.signals)) or "none"
        raise InvalidInput(f"a {operation.kind} operation takes no signal '{name}' (signals: {known})", field="name")
    policy.require(actor, workflow.signals[name], ministry_id=operation.ministry_id)
    waiting = next((s for s in operation.step_list() if s.status == StepStatus.waiting), None)
    if operation.status != OperationStatus.waiting or waiting is None or waiting.waiting_for != name:
        expected = f"'{waiting.waiting_for}'" if waiting is not None and waiting.waiting_for else "no signal"
        raise Conflict(
            f"operation {operation_id} is {operation.status} and waits for {expected}", current_state=operation.status
        )
    operation.parameters = {
        **operation.parameters,
        "signals": {**operation.parameters.get("signals", {}), name: payload},
    }
    operations.set_step(session=session, operation=operation, name=waiting.name, status=StepStatus.pending)
    operations.transition(
        session=session,
        actor=actor,
        operation=operation,
        target=OperationStatus.queued,
        reason=f"signal '{name}' received",
    )
    outbox.enqueue_after_commit(session, operation.id)
    return operation


def decommission(*, session: Session, actor: Actor, service_id: uuid.UUID) -> Operation:
    """Final backup, destroy the stack, release quota; the service ends `retired`."""
    service = _idle_service(session=session, actor=actor, service_id=service_id, action=policy.Action.decommission)
    requests.cancel_pending_change(
        session=session, actor=actor, service_id=service.id, reason="the service is being decommissioned"
    )
    return start(session=session, actor=actor, service=service, kind=OperationKind.decommission)


@dataclass(frozen=True)
class Resize:
    """What a resize did: asked for approval (the plan costs more quota), or started at once."""

    request: Request | None = None
    operation: Operation | None = None


def resize(*, session: Session, actor: Actor, service_id: uuid.UUID, plan_id: str, justification: str = "") -> Resize:
    """Move the service to another plan of its offering, re-checking the ministry's quota.

    A plan that costs more of any resource is approved like an order of that plan: the
    difference is reserved now (refused if it does not fit) and a `modify` request waits for the
    offering's approval stages; the last approval starts the change. A plan that costs no more
    starts at once and gives the difference back when the change has succeeded. Volumes never
    shrink: that would replace them and lose their data.
    """
    service = _idle_service(session=session, actor=actor, service_id=service_id, action=policy.Action.resize)
    if service.status != ServiceStatus.active:
        raise Conflict(f"only an active service can be resized; it is {service.status}", current_state=service.status)
    requests.refuse_if_change_pending(session=session, service_id=service.id)
    offering = catalog.get_offering(service.offering_id)
    current, target = catalog.get_plan(offering, service.plan), catalog.get_plan(offering, plan_id)
    if target.id == current.id:
        raise InvalidInput(f"the service is already on plan '{plan_id}'", field="plan")
    _refuse_shrinking_volumes(current, target)
    growth = {
        name: max(0, target.quota_cost.get(name, 0) - current.quota_cost.get(name, 0)) for name in quota.RESOURCES
    }
    if any(growth.values()):
        request = requests.submit_change(
            session=session, actor=actor, service=service, plan=target, growth=growth, justification=justification
        )
        return Resize(request=request)
    operation = start(
        session=session,
        actor=actor,
        service=service,
        kind=OperationKind.modify,
        parameters={"plan": target.id, "from_plan": current.id},
    )
    return Resize(operation=operation)


def check_action(*, session: Session, actor: Actor, service_id: uuid.UUID, action: str) -> None:
    """Everything `run_action` checks before it starts, without starting anything.

    The API asks this before it reads an upload, so that nobody can make it receive a body for a
    service they cannot see, may not change, or that cannot take the action now. Call it in a
    unit of work of its own that ends before the upload starts: the check locks the service row.
    """
    _active_service_for(session=session, actor=actor, service_id=service_id, action=action)


def run_action(
    *,
    session: Session,
    actor: Actor,
    service_id: uuid.UUID,
    action: str,
    upload: uploads.ReceivedFile | None = None,
    body: Mapping[str, Any] | None = None,
) -> Operation:
    """A day-2 action: a workflow module that says it is one (with the parameters its JSON
    `body` gives, as the workflow checks them), or else the playbook the offering names for
    `action`, optionally with an uploaded file."""
    workflow = workflows.load().get(action)
    if workflow is not None and workflow.day2_action:
        service = _idle_service(
            session=session, actor=actor, service_id=service_id, action=policy.service_action(action)
        )
        if service.status != ServiceStatus.active:
            raise Conflict(f"'{action}' needs an active service; it is {service.status}", current_state=service.status)
        if upload is not None:
            raise InvalidInput(f"'{action}' takes no file", field="body")
        if body and workflow.check_parameters is None:
            raise InvalidInput(f"'{action}' takes no parameters", field="body")
        checked = workflow.check_parameters(body or {}) if workflow.check_parameters else None
        if workflow.check_for_service is not None:
            checked = workflow.check_for_service(session, service, checked or {})
        return start(session=session, actor=actor, service=service, kind=action, parameters=checked)
    service = _active_service_for(session=session, actor=actor, service_id=service_id, action=action)
    if body:
        raise InvalidInput(f"'{action}' takes no parameters", field="body")
    parameters: dict[str, Any] = {"action": action}
    if upload is not None:
        upload_id = uploads.store(session=session, actor=actor, service=service, received=upload)
        parameters["uploads"] = {"archive": str(upload_id)}
    return start(session=session, actor=actor, service=service, kind=OperationKind.action, parameters=parameters)


def _active_service_for(*, session: Session, actor: Actor, service_id: uuid.UUID, action: str) -> Service:
    service = _idle_service(session=session, actor=actor, service_id=service_id, action=policy.service_action(action))
    if service.status != ServiceStatus.active:
        raise Conflict(f"'{action}' needs an active service; it is {service.status}", current_state=service.status)
    offering = catalog.get_offering(service.offering_id)
    if action not in offering.day2_playbooks:
        known = ", ".join(sorted(offering.day2_playbooks)) or "none"
        raise InvalidInput(f"offering '{offering.id}' has no action '{action}' (actions: {known})", field="action")
    return service


def _idle_service(*, session: Session, actor: Actor, service_id: uuid.UUID, action: policy.Action) -> Service:
    """The service locked for a day-2 action: not found (404) before forbidden (403) before busy (409)."""
    service = services.lock(session=session, service_id=service_id, actor=actor)
    policy.require(actor, action, ministry_id=service.ministry_id)
    if service.running_at != PRIMARY and action not in _WHILE_AT_DR:
        # The primary stack is not what serves it now; changing it would be lost at failback.
        raise Conflict(
            f"service {service_id} runs at the DR site since its failover; fail it back first",
            current_state=f"running_at={service.running_at}",
        )
    if any(op.status in IN_PROGRESS for op in operations.list_for_service(session=session, service_id=service_id)):
        raise Conflict(
            f"service {service_id} has an operation in progress; wait for it to finish",
            current_state=service.status,
        )
    return service


def _refuse_shrinking_volumes(current: Plan, target: Plan) -> None:
    for key, size in current.sizes.items():
        new = target.sizes.get(key)
        if "volume" in key and isinstance(size, int) and isinstance(new, int) and new < size:
            raise InvalidInput(
                f"plan '{target.id}' would shrink {key} from {size} to {new} GB; volumes cannot shrink without "
                "losing data (migrate to a new service instead)",
                field="plan",
            )


PRIMARY = "primary"
DR = "dr"
# What may be asked of a service while its DR copy serves it.
_WHILE_AT_DR = frozenset({policy.Action.failback, policy.Action.backup})


def request_dr_move(
    *, session: Session, actor: Actor, service_id: uuid.UUID, kind: RequestKind, justification: str = ""
) -> Request:
    """Ask to fail a service over to the DR site, or back to the primary one: a request that an
    operator approves, whose approval starts the workflow of that kind."""
    service = _idle_service(session=session, actor=actor, service_id=service_id, action=policy.service_action(kind))
    if service.status != ServiceStatus.active:
        raise Conflict(f"'{kind}' needs an active service; it is {service.status}", current_state=service.status)
    expected = PRIMARY if kind == RequestKind.failover else DR
    if service.running_at != expected:
        raise Conflict(
            f"'{kind}' moves a service running at the {expected} site; this one runs at {service.running_at}",
            current_state=f"running_at={service.running_at}",
        )
    return requests.submit_dr_move(
        session=session, actor=actor, service=service, kind=kind, justification=justification
    )
