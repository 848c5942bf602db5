"""Which services are overdue a DR drill: their last passing drill is older than their backup
policy's `drill_every_days`, or they never passed one.

A drill passed when its operation succeeded: the drill workflow ends `failed` when a check fails.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.backup import policies
from orchestrator.catalog import service as catalog
from orchestrator.database.columns import utcnow
from orchestrator.dr.campaign_models import OverduePublic
from orchestrator.operations.models import Operation, OperationKind, OperationStatus
from orchestrator.services.models import Service, ServiceStatus

# A service in these states has nothing to drill (not built yet, or going away for good).
NOT_DRILLABLE_STATES = frozenset(
    {ServiceStatus.provisioning, ServiceStatus.decommissioning, ServiceStatus.retired, ServiceStatus.failed}
)


@dataclass(frozen=True)
class Due:
    due_at: datetime
    overdue_seconds: float  # negative: not due yet


def due(*, now: datetime, drill_every_days: int, last_passed_at: datetime | None, created_at: datetime) -> Due:
    """When the next drill is due. A service that never passed a drill is due since it exists:
    until one passes, nobody knows its backups restore."""
    due_at = created_at if last_passed_at is None else last_passed_at + timedelta(days=drill_every_days)
    return Due(due_at=due_at, overdue_seconds=(now - due_at).total_seconds())


def has_backups(service: Service) -> bool:
    """Whether the service's offering has a backup tier: only those have restore points to drill."""
    return policies.tier_name(catalog.get_offering(service.offering_id)) is not None


def drillable_services(*, session: Session, ministry_id: uuid.UUID | None) -> Sequence[Service]:
    """Live services with backups, of one ministry or of every one, oldest first."""
    query = select(Service).where(col(Service.status).not_in(NOT_DRILLABLE_STATES))
    if ministry_id is not None:
        query = query.where(Service.ministry_id == ministry_id)
    return [service for service in session.exec(query.order_by(col(Service.created_at))).all() if has_backups(service)]


def last_passed_drills(*, session: Session, service_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Operation]:
    """Each service's latest succeeded drill operation."""
    rows = session.exec(
        select(Operation)
        .where(
            col(Operation.service_id).in_(service_ids),
            Operation.kind == OperationKind.drill,
            Operation.status == OperationStatus.succeeded,
        )
        .order_by(col(Operation.finished_at))
    ).all()
    return {operation.service_id: operation for operation in rows}  # the latest wins


def list_overdue(
    *, session: Session, actor: Actor, ministry_id: uuid.UUID | None = None, now: datetime | None = None
) -> list[OverduePublic]:
    """The services the actor can see (of one ministry, if given) that are overdue, most overdue first."""
    if ministry_id is not None and not policy.can_see(actor, ministry_id):
        return []
    if ministry_id is None and not policy.sees_all_ministries(actor):
        if actor.ministry_id is None:
            return []
        ministry_id = actor.ministry_id
    return overdue_in(session=session, ministry_id=ministry_id, now=now)


def overdue_in(*, session: Session, ministry_id: uuid.UUID | None, now: datetime | None = None) -> list[OverduePublic]:
    """Overdue services of one ministry or of the data centre, most overdue first (no visibility check)."""
    now = now or utcnow()
    services = drillable_services(session=session, ministry_id=ministry_id)
    passed = last_passed_drills(session=session, service_ids=[service.id for service in services])
    found: list[OverduePublic] = []
    for service in services:
        every = policies.get(session=session, service_id=service.id).drill_every_days
        last = passed.get(service.id)
        last_at = last.finished_at if last is not None else None
        when = due(now=now, drill_every_days=every, last_passed_at=last_at, created_at=service.created_at)
        if when.overdue_seconds < 0:
            continue
        found.append(
            OverduePublic(
                service_id=service.id,
                service_name=service.name,
                ministry_id=service.ministry_id,
                offering_id=service.offering_id,
                drill_every_days=every,
                last_passed_drill_at=last_at,
                last_passed_operation_id=last.id if last is not None else None,
                due_at=when.due_at,
                overdue_seconds=round(when.overdue_seconds, 3),
            )
        )
    return sorted(found, key=lambda item: -item.overdue_seconds)
