"""Creating operations, moving them through their steps, and their event stream."""

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.database.columns import utcnow
from orchestrator.database.queries import locked, page
from orchestrator.errors import NotFound
from orchestrator.operations import outbox
from orchestrator.operations.models import (
    WORKFLOW_STEPS,
    Event,
    Operation,
    OperationStatus,
    Step,
    StepStatus,
)
from orchestrator.operations.states import OPERATION_STATES
from orchestrator.services.models import Service

log = logging.getLogger("tonle.operations")


def create(
    *,
    session: Session,
    actor: Actor,
    service: Service,
    kind: str,
    request_id: uuid.UUID | None = None,
    parameters: dict[str, Any] | None = None,
) -> Operation:
    """A queued operation; its job is deferred when the caller's transaction commits."""
    steps = WORKFLOW_STEPS.get(kind)
    if steps is None:
        raise NotImplementedError(f"operation kind '{kind}' has no workflow yet")
    operation = Operation(
        service_id=service.id,
        ministry_id=service.ministry_id,
        request_id=request_id,
        kind=kind,
        status=OperationStatus.queued,
        steps=[Step(name=name).model_dump(mode="json") for name in steps],
        parameters=parameters or {},
        created_by=actor.user_id,
    )
    session.add(operation)
    session.flush()
    add_event(session=session, operation=operation, type="operation.queued", message=f"{kind} queued")
    audit.record(
        session=session,
        actor=actor,
        entity="operation",
        entity_id=operation.id,
        ministry_id=operation.ministry_id,
        action="created",
        to_state=operation.status,
        detail={"kind": kind, "service": str(service.id)},
    )
    outbox.enqueue_after_commit(session, operation.id)
    return operation


def get(*, session: Session, actor: Actor, operation_id: uuid.UUID) -> Operation:
    operation = session.get(Operation, operation_id)
    if operation is None or not policy.can_see(actor, operation.ministry_id):
        raise NotFound(f"operation {operation_id} not found")
    return operation


def lock(*, session: Session, operation_id: uuid.UUID, actor: Actor | None = None) -> Operation:
    """The operation row locked for update; with an actor, one of another ministry is not found."""
    operation = locked(session, Operation, operation_id)
    if operation is None or (actor is not None and not policy.can_see(actor, operation.ministry_id)):
        raise NotFound(f"operation {operation_id} not found")
    return operation


def list_operations(
    *,
    session: Session,
    actor: Actor,
    status: OperationStatus | None = None,
    kind: str | None = None,
    offering_id: str | None = None,
    ministry_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Operation], int]:
    """The operations the actor can see, newest first, and how many match in all."""
    query = select(Operation)
    if not policy.sees_all_ministries(actor):
        query = query.where(Operation.ministry_id == actor.ministry_id)
    if ministry_id is not None:
        query = query.where(Operation.ministry_id == ministry_id)
    if status is not None:
        query = query.where(Operation.status == status)
    if kind is not None:
        query = query.where(Operation.kind == kind)
    if offering_id is not None:
        query = query.join(Service, col(Service.id) == col(Operation.service_id)).where(
            Service.offering_id == offering_id
        )
    return page(session, query, col(Operation.created_at).desc(), col(Operation.id), limit=limit, offset=offset)


def list_for_service(*, session: Session, service_id: uuid.UUID) -> Sequence[Operation]:
    return session.exec(
        select(Operation).where(Operation.service_id == service_id).order_by(col(Operation.created_at))
    ).all()


def events(*, session: Session, operation_id: uuid.UUID, after_id: int = 0, limit: int = 1000) -> Sequence[Event]:
    return session.exec(
        select(Event)
        .where(Event.operation_id == operation_id, col(Event.id) > after_id)
        .order_by(col(Event.id))
        .limit(limit)
    ).all()


def add_event(
    *,
    session: Session,
    operation: Operation,
    type: str,
    message: str,
    step: str | None = None,
    level: str = "info",
    data: dict[str, Any] | None = None,
) -> Event:
    event = Event(operation_id=operation.id, type=type, message=message, step=step, level=level, data=data or {})
    session.add(event)
    log.log(
        logging.ERROR if level == "error" else logging.INFO,
        "op %s [%s%s] %s",
        operation.id,
        operation.kind,
        f"/{step}" if step else "",
        message,
    )
    return event


def transition(
    *, session: Session, actor: Actor, operation: Operation, target: OperationStatus, reason: str = ""
) -> None:
    OPERATION_STATES.check(operation.status, target)
    previous = operation.status
    operation.status = target
    operation.updated_at = utcnow()
    if target == OperationStatus.running:
        operation.attempts += 1
        operation.started_at = operation.started_at or utcnow()
    if target in (OperationStatus.succeeded, OperationStatus.failed, OperationStatus.cancelled):
        operation.finished_at = utcnow()
    if target in (OperationStatus.queued, OperationStatus.running):
        operation.finished_at = None
    session.add(operation)
    add_event(
        session=session,
        operation=operation,
        type=f"operation.{target}",
        message=f"{operation.kind} {target}" + (f": {reason}" if reason else ""),
        level="error" if target == OperationStatus.failed else "info",
    )
    audit.record(
        session=session,
        actor=actor,
        entity="operation",
        entity_id=operation.id,
        ministry_id=operation.ministry_id,
        action="status_changed",
        from_state=previous,
        to_state=target,
        detail={"reason": reason} if reason else None,
    )


def set_step(
    *,
    session: Session,
    operation: Operation,
    name: str,
    status: StepStatus,
    error: str | None = None,
    waiting_for: str | None = None,
) -> None:
    steps = operation.step_list()
    step = next((s for s in steps if s.name == name), None)
    if step is None:
        raise ValueError(f"operation {operation.id} has no step '{name}'")
    step.status = status
    step.waiting_for = waiting_for if status == StepStatus.waiting else None
    if status == StepStatus.running:
        step.started_at, step.finished_at, step.error = utcnow(), None, None
    elif status in (StepStatus.succeeded, StepStatus.failed):
        step.finished_at = utcnow()
        step.error = error
    if status == StepStatus.failed:
        operation.failed_step, operation.error = name, error
    if status == StepStatus.running and operation.failed_step == name:
        operation.failed_step, operation.error = None, None
    # A new list object, so SQLAlchemy sees the JSON column change.
    operation.steps = [s.model_dump(mode="json") for s in steps]
    operation.updated_at = utcnow()
    session.add(operation)
    add_event(
        session=session,
        operation=operation,
        type=f"step.{status}",
        step=name,
        message=f"step {name} {status}" + (f": {error}" if error else ""),
        level="error" if status == StepStatus.failed else "info",
    )


def pending_steps(operation: Operation) -> list[str]:
    return [s.name for s in operation.step_list() if s.status != StepStatus.succeeded]


def stale_queued(*, session: Session, older_than_seconds: int) -> Sequence[uuid.UUID]:
    """Queued operations that may have lost their job (a crash between commit and defer)."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    return session.exec(
        select(Operation.id).where(Operation.status == OperationStatus.queued, col(Operation.updated_at) < cutoff)
    ).all()
