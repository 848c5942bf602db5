"""Actions on existing operations and services: retry a failed operation, decommission."""

import uuid

from sqlmodel import Session

from orchestrator.auth.models import Actor
from orchestrator.errors import Conflict
from orchestrator.operations import outbox
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation, OperationKind, OperationStatus
from orchestrator.pipeline.runner import SERVICE_WHILE_RUNNING
from orchestrator.requests import service as requests
from orchestrator.services import service as services
from orchestrator.services.models import ServiceStatus


def retry(*, session: Session, actor: Actor, operation_id: uuid.UUID) -> Operation:
    """Put a failed operation back in the queue; it resumes at the step that failed."""
    services.check_day2_allowed(actor)
    operations.get(session=session, actor=actor, operation_id=operation_id)  # visibility
    operation = operations.lock(session=session, operation_id=operation_id)
    operations.transition(
        session=session, actor=actor, operation=operation, target=OperationStatus.queued, reason="retry requested"
    )
    service = services.lock(session=session, service_id=operation.service_id)
    if service.status == ServiceStatus.failed:
        services.transition(
            session=session, actor=actor, service=service, target=SERVICE_WHILE_RUNNING[operation.kind], reason="retry"
        )
    if operation.kind == OperationKind.provision and operation.request_id:
        requests.on_operation_retried(session=session, actor=actor, request_id=operation.request_id)
    outbox.enqueue_after_commit(session, operation.id)
    session.commit()
    return operation


def decommission(*, session: Session, actor: Actor, service_id: uuid.UUID) -> Operation:
    """Final backup, destroy the stack, release quota; the service ends `retired`."""
    services.check_day2_allowed(actor)
    services.get(session=session, actor=actor, service_id=service_id)  # visibility
    service = services.lock(session=session, service_id=service_id)
    if _has_unfinished_operation(session=session, service_id=service_id):
        raise Conflict(
            f"service {service_id} has an operation in progress; wait for it or cancel it first",
            current_state=service.status,
        )
    services.transition(session=session, actor=actor, service=service, target=ServiceStatus.decommissioning)
    operation = operations.create(session=session, actor=actor, service=service, kind=OperationKind.decommission)
    session.commit()
    return operation


def _has_unfinished_operation(*, session: Session, service_id: uuid.UUID) -> bool:
    return any(
        op.status in (OperationStatus.queued, OperationStatus.running)
        for op in operations.list_for_service(session=session, service_id=service_id)
    )
