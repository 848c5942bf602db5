"""A ministry's showback for a month: its services' lifetimes from the database, priced from the
catalogue. Reading it needs only visibility of the ministry, as reading its services does."""

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.catalog import service as catalog
from orchestrator.database.columns import utcnow
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.ministry.models import Ministry
from orchestrator.operations.models import Operation, OperationKind, OperationStatus
from orchestrator.services.models import Service
from orchestrator.showback import compute
from orchestrator.showback.compute import Lifetime, Month, PlanChange, PlanPrice
from orchestrator.showback.models import ShowbackReport


def month_of(text: str | None, *, now: datetime | None = None) -> Month:
    """The month a caller asked for (`YYYY-MM`), or the current one; 422 naming `month` otherwise."""
    if text is None or text == "":
        return Month.containing(now or utcnow())
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise InvalidInput(f"month: expected {exc}", field="month") from exc


def showback(*, session: Session, actor: Actor, ministry_id: uuid.UUID, month: Month) -> ShowbackReport:
    ministry = session.get(Ministry, ministry_id)
    if ministry is None or not policy.can_see(actor, ministry_id):
        raise NotFound(f"ministry {ministry_id} not found")
    now = utcnow()
    lines = compute.lines_for(
        lifetimes=_lifetimes(session=session, ministry_id=ministry_id, month=month),
        prices=_prices(),
        month=month,
        now=now,
    )
    return ShowbackReport(
        ministry_id=ministry.id,
        ministry_code=ministry.code,
        ministry_name=ministry.name,
        month=str(month),
        period_start=month.start,
        period_end=month.end,
        measured_until=max(month.start, min(month.end, now)),
        rounding=compute.ROUNDING,
        lines=lines,
        offerings=compute.offering_totals(lines),
        total_riel=sum(line.amount_riel for line in lines),
    )


def _lifetimes(*, session: Session, ministry_id: uuid.UUID, month: Month) -> list[Lifetime]:
    """The ministry's services that may have lived in the month, with when they became active
    (provision succeeded) and changed plan (modify succeeded)."""
    services = session.exec(
        select(Service).where(
            Service.ministry_id == ministry_id,
            col(Service.created_at) < month.end,
            or_(col(Service.retired_at).is_(None), col(Service.retired_at) > month.start),
        )
    ).all()
    if not services:
        return []
    operations = session.exec(
        select(Operation)
        .where(
            col(Operation.service_id).in_([s.id for s in services]),
            col(Operation.kind).in_([OperationKind.provision.value, OperationKind.modify.value]),
            Operation.status == OperationStatus.succeeded,
            col(Operation.finished_at).is_not(None),
        )
        .order_by(col(Operation.finished_at))
    ).all()
    active_from: dict[uuid.UUID, datetime] = {}
    changes: dict[uuid.UUID, list[PlanChange]] = defaultdict(list)
    for operation in operations:
        assert operation.finished_at is not None
        if operation.kind == OperationKind.provision:
            active_from.setdefault(operation.service_id, operation.finished_at)
        else:
            changes[operation.service_id].append(
                PlanChange(
                    at=operation.finished_at,
                    from_plan=str(operation.parameters.get("from_plan", "")),
                    to_plan=str(operation.parameters.get("plan", "")),
                )
            )
    return [
        Lifetime(
            service_id=service.id,
            service_name=service.name,
            offering_id=service.offering_id,
            spans=compute.plan_spans(
                active_from=active_from.get(service.id),
                retired_at=service.retired_at,
                current_plan=service.plan,
                changes=changes[service.id],
            ),
        )
        for service in services
    ]


def _prices() -> dict[tuple[str, str], PlanPrice]:
    return {
        (offering.id, plan.id): PlanPrice(
            offering_title=offering.title, plan_title=plan.title, riel_per_month=plan.price_riel_per_month
        )
        for offering in catalog.list_offerings()
        for plan in offering.plans
    }
