"""Deployed services: creation from an approved request, lookups, status, day-2 requests."""

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from orchestrator.audit import service as audit
from orchestrator.auth.models import Actor, Role
from orchestrator.database.columns import utcnow
from orchestrator.errors import NotFound, PermissionDenied
from orchestrator.ministry.models import Ministry
from orchestrator.requests.models import Request
from orchestrator.services.models import Service, ServiceStatus
from orchestrator.services.states import SERVICE_STATES

# Backups of a retired service are kept this long unless its plan says otherwise.
DEFAULT_RETENTION = timedelta(days=90)

DAY2_ROLES = frozenset({Role.requester, Role.ministry_approver, Role.operator, Role.admin, Role.automation})


def stack_name_for(*, ministry_code: str, offering_id: str, service_id: uuid.UUID) -> str:
    return f"{ministry_code}-{offering_id}-{service_id.hex[:8]}"


def create_for_request(*, session: Session, actor: Actor, request: Request) -> Service:
    ministry = session.get(Ministry, request.ministry_id)
    assert ministry is not None
    service_id = uuid.uuid4()
    name = str(request.parameters.get("name") or request.parameters.get("domain") or request.offering_id)
    service = Service(
        id=service_id,
        ministry_id=request.ministry_id,
        request_id=request.id,
        offering_id=request.offering_id,
        offering_version=request.offering_version,
        plan=request.plan,
        name=name,
        status=ServiceStatus.provisioning,
        stack_name=stack_name_for(ministry_code=ministry.code, offering_id=request.offering_id, service_id=service_id),
        parameters=request.parameters,
        quota_cost=request.quota_cost,
    )
    session.add(service)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action="created",
        to_state=service.status,
        detail={"stack": service.stack_name, "request": str(request.id)},
    )
    return service


def get(*, session: Session, actor: Actor, service_id: uuid.UUID) -> Service:
    service = session.get(Service, service_id)
    if service is None or not (actor.sees_all_ministries or actor.ministry_id == service.ministry_id):
        raise NotFound(f"service {service_id} not found")
    return service


def lock(*, session: Session, service_id: uuid.UUID) -> Service:
    service = session.exec(
        select(Service).where(Service.id == service_id).with_for_update().execution_options(populate_existing=True)
    ).first()
    if service is None:
        raise NotFound(f"service {service_id} not found")
    return service


def list_services(
    *,
    session: Session,
    actor: Actor,
    status: ServiceStatus | None = None,
    offering_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Service], int]:
    query = select(Service)
    if not actor.sees_all_ministries:
        query = query.where(Service.ministry_id == actor.ministry_id)
    if status is not None:
        query = query.where(Service.status == status)
    if offering_id is not None:
        query = query.where(Service.offering_id == offering_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Service.created_at).desc()).offset(offset).limit(limit)).all()
    return rows, total


def transition(*, session: Session, actor: Actor, service: Service, target: ServiceStatus, reason: str = "") -> None:
    SERVICE_STATES.check(service.status, target)
    previous = service.status
    service.status = target
    service.updated_at = utcnow()
    if target == ServiceStatus.retired:
        service.retired_at = utcnow()
        service.retain_backups_until = service.retired_at + DEFAULT_RETENTION
    session.add(service)
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action="status_changed",
        from_state=previous,
        to_state=target,
        detail={"reason": reason} if reason else None,
    )


def check_day2_allowed(actor: Actor) -> None:
    if actor.role not in DAY2_ROLES:
        raise PermissionDenied(f"role '{actor.role}' cannot act on services")
