"""DR drill campaigns: drill every service of a ministry, or of the data centre, at most
`max_parallel` drills in progress at once.

A campaign is rows (`campaign_models`): which drills started, which wait, which were skipped.
`advance` starts drills while slots are free; the job queue calls it when a drill operation
finishes and every minute, so a crash anywhere only delays the next start. Starting a drill is
the workflow layer's business; the caller hands it in (`StartDrill`), as this package sits below
the workflows.
"""

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import SYSTEM, Actor
from orchestrator.auth.models import User
from orchestrator.backup.models import RestorePoint
from orchestrator.database.columns import utcnow
from orchestrator.database.queries import locked
from orchestrator.dr import overdue, reports
from orchestrator.dr.campaign_models import (
    MAX_PARALLEL,
    CampaignDrillPublic,
    CampaignPublic,
    DrCampaign,
    DrCampaignDrill,
    DrillState,
)
from orchestrator.errors import Conflict, InvalidInput, NotFound, NotImplementedYet, PermissionDenied
from orchestrator.ministry import service as ministries
from orchestrator.ministry.models import Ministry
from orchestrator.operations.models import IN_PROGRESS, Operation, OperationKind, OperationStatus
from orchestrator.services.models import Service, ServiceStatus

StartDrill = Callable[[Session, Actor, uuid.UUID], Operation]
K = TypeVar("K")

# A scheduled drill that did not pass is tried again after this long, not at every tick.
SCHEDULE_RETRY_AFTER = timedelta(days=1)


class Readiness(StrEnum):
    ready = "ready"
    busy = "busy"  # another operation holds the service: wait for it
    gone = "gone"  # the service is no longer active: skip it


@dataclass(frozen=True)
class Round(Generic[K]):
    slots: int  # how many drills may start now
    candidates: list[K]  # the ones ready to start, in order: start them until the slots are full
    skip: list[K]


def plan_round(*, waiting: Sequence[tuple[K, Readiness]], in_progress: int, max_parallel: int) -> Round[K]:
    """Which waiting drills may start now (in order, into the free slots) and which to give up.

    A busy service keeps its place and lets the next one go first; a service that is gone is
    skipped whether or not a slot is free. A candidate that turns out not to start leaves its
    slot to the next candidate.
    """
    return Round(
        slots=max(0, max_parallel - in_progress),
        candidates=[drill for drill, readiness in waiting if readiness == Readiness.ready],
        skip=[drill for drill, readiness in waiting if readiness == Readiness.gone],
    )


def resolve_ministry(*, session: Session, actor: Actor, ministry: str) -> Ministry:
    """A ministry by id or code; one the actor cannot see is not found."""
    found: Ministry | None
    try:
        found = session.get(Ministry, uuid.UUID(ministry))
    except ValueError:
        found = ministries.get_by_code(session=session, code=ministry)
    if found is None or not policy.can_see(actor, found.id):
        raise NotFound(f"ministry {ministry} not found", field="ministry")
    return found


def create(
    *, session: Session, actor: Actor, ministry: str | None, max_parallel: int, scheduled: bool = False
) -> DrCampaign:
    """A campaign over every drillable service of the ministry (or of the data centre), none started yet."""
    if not 1 <= max_parallel <= MAX_PARALLEL:
        raise InvalidInput(f"max_parallel must be between 1 and {MAX_PARALLEL}", field="max_parallel")
    ministry_id: uuid.UUID | None = None
    if ministry is not None:
        ministry_id = resolve_ministry(session=session, actor=actor, ministry=ministry).id
        policy.require(actor, policy.Action.drill, ministry_id=ministry_id, entity="ministry")
    else:
        policy.require_data_centre(actor, policy.Action.drill)
    services = overdue.drillable_services(session=session, ministry_id=ministry_id)
    return _create(
        session=session,
        actor=actor,
        ministry_id=ministry_id,
        services=[s for s in services if s.status == ServiceStatus.active],
        max_parallel=max_parallel,
        scheduled=scheduled,
    )


def _create(
    *,
    session: Session,
    actor: Actor,
    ministry_id: uuid.UUID | None,
    services: Sequence[Service],
    max_parallel: int,
    scheduled: bool,
) -> DrCampaign:
    campaign = DrCampaign(
        ministry_id=ministry_id,
        scheduled=scheduled,
        max_parallel=max_parallel,
        started_by=actor.user_id,
        started_by_name=actor.username,
    )
    session.add(campaign)
    session.flush()
    for position, service in enumerate(services):
        session.add(
            DrCampaignDrill(
                campaign_id=campaign.id, service_id=service.id, ministry_id=service.ministry_id, position=position
            )
        )
    if not services:
        campaign.finished_at = utcnow()
    session.flush()
    return campaign


def schedule_due(*, session: Session, max_parallel: int, now: datetime | None = None) -> DrCampaign | None:
    """The system's campaign over services overdue a drill per their policy, unless one is open.

    Only services with a restore point (a drill without one can only fail) and no drill started
    within `SCHEDULE_RETRY_AFTER` (a failing drill is retried daily, not at every tick).
    """
    open_one = session.exec(
        select(DrCampaign).where(col(DrCampaign.scheduled).is_(True), col(DrCampaign.finished_at).is_(None))
    ).first()
    if open_one is not None:
        return None
    now = now or utcnow()
    due_ids = {item.service_id for item in overdue.overdue_in(session=session, ministry_id=None, now=now)}
    recent = set(
        session.exec(
            select(Operation.service_id).where(
                col(Operation.service_id).in_(due_ids),
                Operation.kind == OperationKind.drill,
                col(Operation.created_at) > now - SCHEDULE_RETRY_AFTER,
            )
        ).all()
    )
    restorable = set(
        session.exec(
            select(RestorePoint.service_id).where(
                col(RestorePoint.service_id).in_(due_ids), col(RestorePoint.pruned_at).is_(None)
            )
        ).all()
    )
    services = [
        service
        for service in overdue.drillable_services(session=session, ministry_id=None)
        if service.id in due_ids & restorable and service.id not in recent and service.status == ServiceStatus.active
    ]
    if not services:
        return None
    return _create(
        session=session, actor=SYSTEM, ministry_id=None, services=services, max_parallel=max_parallel, scheduled=True
    )


def open_campaigns(*, session: Session) -> Sequence[uuid.UUID]:
    return session.exec(select(DrCampaign.id).where(col(DrCampaign.finished_at).is_(None))).all()


def campaign_of(*, session: Session, operation_id: uuid.UUID) -> uuid.UUID | None:
    return session.exec(select(DrCampaignDrill.campaign_id).where(DrCampaignDrill.operation_id == operation_id)).first()


def advance(*, session: Session, campaign_id: uuid.UUID, start_drill: StartDrill) -> list[uuid.UUID]:
    """Start the campaign's next drills while fewer than `max_parallel` are in progress; mark it
    finished when nothing waits or runs. Returns the operations started. The campaign row is
    locked, so two workers advancing it at once never overfill it."""
    campaign = locked(session, DrCampaign, campaign_id)
    if campaign is None or campaign.finished_at is not None:
        return []
    drills = _drills(session=session, campaign_id=campaign_id)
    statuses = _operation_statuses(session=session, drills=drills)
    in_progress = sum(1 for drill in drills if statuses.get(drill.operation_id) in IN_PROGRESS)
    waiting = [drill for drill in drills if drill.operation_id is None and drill.skipped_reason is None]
    actor = _starter(session=session, campaign=campaign)
    started: list[uuid.UUID] = []
    if actor is None:
        for drill in waiting:
            drill.skipped_reason = f"the account that started the campaign ({campaign.started_by_name}) is not active"
            session.add(drill)
        waiting = []
    plan = plan_round(
        waiting=[(drill, _readiness(session=session, service_id=drill.service_id)) for drill in waiting],
        in_progress=in_progress,
        max_parallel=campaign.max_parallel,
    )
    for drill in plan.skip:
        service = session.get(Service, drill.service_id)
        drill.skipped_reason = f"the service is {service.status if service else 'gone'}"
        session.add(drill)
    for drill in plan.candidates:
        if len(started) == plan.slots:
            break
        assert actor is not None  # no actor, nothing waits
        try:
            with session.begin_nested():
                operation = start_drill(session, actor, drill.service_id)
        except Conflict as refused:
            if _readiness(session=session, service_id=drill.service_id) == Readiness.busy:
                continue  # something started on it meanwhile: it keeps its place
            drill.skipped_reason = str(refused)[:500]  # e.g. it runs at the DR site since a failover
        except NotImplementedYet:
            break  # no drill workflow in this process yet: everything waits
        except (NotFound, PermissionDenied, InvalidInput) as refused:
            drill.skipped_reason = str(refused)[:500]
        else:
            drill.operation_id, drill.started_at = operation.id, utcnow()
            started.append(operation.id)
        session.add(drill)
    still_waiting = any(drill.operation_id is None and drill.skipped_reason is None for drill in drills)
    if not still_waiting and in_progress + len(started) == 0:
        campaign.finished_at = utcnow()
        session.add(campaign)
    session.flush()
    return started


def get(*, session: Session, actor: Actor, campaign_id: uuid.UUID) -> DrCampaign:
    """A campaign the actor can see: its ministry's, or a data-centre one for those who see every ministry."""
    campaign = session.get(DrCampaign, campaign_id)
    if campaign is None or not _visible(actor, campaign):
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def recent(*, session: Session, actor: Actor, limit: int = 5) -> list[CampaignPublic]:
    """The latest campaigns the actor can see, newest first, each summarised."""
    query = select(DrCampaign.id)
    if not policy.sees_all_ministries(actor):
        if actor.ministry_id is None:
            return []  # `ministry_id IS NULL` would be the data-centre campaigns
        query = query.where(DrCampaign.ministry_id == actor.ministry_id)
    ids = session.exec(query.order_by(col(DrCampaign.created_at).desc()).limit(limit)).all()
    return [summary(session=session, actor=actor, campaign_id=campaign_id) for campaign_id in ids]


def summary(*, session: Session, actor: Actor, campaign_id: uuid.UUID) -> CampaignPublic:
    campaign = get(session=session, actor=actor, campaign_id=campaign_id)
    drills = _drills(session=session, campaign_id=campaign_id)
    shown = [_drill_public(session=session, drill=drill) for drill in drills]
    counts = {state.value: 0 for state in DrillState}
    for drill in shown:
        counts[drill.state] += 1
    rtos = [d.rto_seconds for d in shown if d.rto_seconds is not None]
    rpos = [d.rpo_seconds for d in shown if d.rpo_seconds is not None]
    return CampaignPublic(
        id=campaign.id,
        ministry_id=campaign.ministry_id,
        scheduled=campaign.scheduled,
        max_parallel=campaign.max_parallel,
        started_by=campaign.started_by_name,
        created_at=campaign.created_at,
        finished_at=campaign.finished_at,
        counts=counts,
        worst_rto_seconds=max(rtos, default=None),
        worst_rpo_seconds=max(rpos, default=None),
        drills=shown,
        overdue=overdue.overdue_in(session=session, ministry_id=campaign.ministry_id),
    )


def _visible(actor: Actor, campaign: DrCampaign) -> bool:
    if campaign.ministry_id is None:
        return policy.sees_all_ministries(actor)
    return policy.can_see(actor, campaign.ministry_id)


def _drills(*, session: Session, campaign_id: uuid.UUID) -> Sequence[DrCampaignDrill]:
    return session.exec(
        select(DrCampaignDrill)
        .where(DrCampaignDrill.campaign_id == campaign_id)
        .order_by(col(DrCampaignDrill.position))
    ).all()


def _operation_statuses(
    *, session: Session, drills: Sequence[DrCampaignDrill]
) -> dict[uuid.UUID | None, OperationStatus]:
    ids = [drill.operation_id for drill in drills if drill.operation_id is not None]
    rows = session.exec(select(Operation.id, Operation.status).where(col(Operation.id).in_(ids))).all()
    return {operation_id: OperationStatus(status) for operation_id, status in rows}


def _starter(*, session: Session, campaign: DrCampaign) -> Actor | None:
    """Who starts the drills: the campaign's starter with today's permissions (None if no longer active)."""
    if campaign.started_by is None:
        return SYSTEM
    user = session.get(User, campaign.started_by)
    return user.as_actor() if user is not None and user.active else None


def _readiness(*, session: Session, service_id: uuid.UUID) -> Readiness:
    service = session.get(Service, service_id)
    if service is None or service.status in overdue.NOT_DRILLABLE_STATES:
        return Readiness.gone
    busy = session.exec(
        select(Operation.id).where(Operation.service_id == service_id, col(Operation.status).in_(IN_PROGRESS))
    ).first()
    if busy is not None or service.status != ServiceStatus.active:
        return Readiness.busy
    return Readiness.ready


def _drill_public(*, session: Session, drill: DrCampaignDrill) -> CampaignDrillPublic:
    service = session.get(Service, drill.service_id)
    operation = session.get(Operation, drill.operation_id) if drill.operation_id is not None else None
    rto, rpo = _figures(session=session, operation=operation)
    return CampaignDrillPublic(
        service_id=drill.service_id,
        service_name=service.name if service is not None else "",
        ministry_id=drill.ministry_id,
        state=_state(drill, operation),
        operation_id=drill.operation_id,
        started_at=drill.started_at,
        finished_at=operation.finished_at if operation is not None else None,
        rto_seconds=rto,
        rpo_seconds=rpo,
        skipped_reason=drill.skipped_reason,
    )


def _state(drill: DrCampaignDrill, operation: Operation | None) -> DrillState:
    if drill.skipped_reason is not None:
        return DrillState.skipped
    if operation is None:
        return DrillState.pending
    if operation.status == OperationStatus.succeeded:
        return DrillState.passed
    if operation.status in IN_PROGRESS:
        return DrillState.running
    return DrillState.failed


def _figures(*, session: Session, operation: Operation | None) -> tuple[float | None, float | None]:
    """RTO and RPO as the drill's signed report states them (none before it is written)."""
    if operation is None:
        return None, None
    report = reports.for_operation(session=session, operation_id=operation.id)
    if report is None:
        return None, None
    body = json.loads(report.body)
    return _number(body.get("rto_seconds")), _number(body.get("rpo_seconds"))


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
