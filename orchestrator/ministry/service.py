"""Ministries and their quota. Reservations lock the ministry row so concurrent orders queue."""

import uuid
from collections.abc import Mapping, Sequence

from sqlmodel import Session, select

from orchestrator import quota
from orchestrator.audit import service as audit
from orchestrator.auth.models import Actor
from orchestrator.database.queries import locked
from orchestrator.errors import Conflict, NotFound, QuotaExceeded
from orchestrator.ministry.models import Ministry, MinistryCreate, MinistryUpdate


def get(*, session: Session, ministry_id: uuid.UUID) -> Ministry:
    ministry = session.get(Ministry, ministry_id)
    if ministry is None:
        raise NotFound(f"ministry {ministry_id} not found")
    return ministry


def get_by_code(*, session: Session, code: str) -> Ministry | None:
    return session.exec(select(Ministry).where(Ministry.code == code)).first()


def list_all(*, session: Session) -> Sequence[Ministry]:
    return session.exec(select(Ministry).order_by(Ministry.code)).all()


def create(*, session: Session, actor: Actor, data: MinistryCreate) -> Ministry:
    if get_by_code(session=session, code=data.code):
        raise Conflict(f"a ministry with code '{data.code}' exists", field="code")
    ministry = Ministry(
        code=data.code,
        name=data.name,
        quota_limits=quota.normalise(data.quota_limits.model_dump()),
    )
    session.add(ministry)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        entity="ministry",
        entity_id=ministry.id,
        ministry_id=ministry.id,
        action="created",
        detail={"code": ministry.code, "quota_limits": ministry.quota_limits},
    )
    session.commit()
    return ministry


def update(*, session: Session, actor: Actor, ministry_id: uuid.UUID, data: MinistryUpdate) -> Ministry:
    ministry = lock(session=session, ministry_id=ministry_id)
    changes: dict[str, object] = {}
    if data.name is not None:
        ministry.name = data.name
        changes["name"] = data.name
    if data.quota_limits is not None:
        # Lowering limits below current use is allowed (it blocks new orders); say so in the audit.
        ministry.quota_limits = quota.normalise(data.quota_limits.model_dump())
        changes["quota_limits"] = ministry.quota_limits
        changes["over_limit"] = quota.shortfall(
            limits=ministry.quota_limits, used=quota.empty(), cost=ministry.quota_used
        )
    session.add(ministry)
    audit.record(
        session=session,
        actor=actor,
        entity="ministry",
        entity_id=ministry.id,
        ministry_id=ministry.id,
        action="updated",
        detail=changes,
    )
    session.commit()
    return ministry


def lock(*, session: Session, ministry_id: uuid.UUID) -> Ministry:
    """The ministry row under `SELECT ... FOR UPDATE`, held until the transaction ends."""
    ministry = locked(session, Ministry, ministry_id)
    if ministry is None:
        raise NotFound(f"ministry {ministry_id} not found")
    return ministry


def reserve(*, session: Session, ministry_id: uuid.UUID, cost: Mapping[str, int]) -> Ministry:
    """Take `cost` from the ministry's quota or raise QuotaExceeded; caller commits."""
    ministry = lock(session=session, ministry_id=ministry_id)
    over = quota.shortfall(limits=ministry.quota_limits, used=ministry.quota_used, cost=cost)
    if over:
        names = ", ".join(
            f"{name} (requested {v['requested']}, remaining {v['remaining']})" for name, v in over.items()
        )
        raise QuotaExceeded(
            f"ministry '{ministry.code}' has not enough quota left: {names}",
            field="plan",
            shortfall=over,
        )
    ministry.quota_used = quota.add(ministry.quota_used, cost)
    session.add(ministry)
    return ministry


def release(*, session: Session, ministry_id: uuid.UUID, cost: Mapping[str, int]) -> Ministry:
    """Give `cost` back to the ministry's quota; caller commits."""
    ministry = lock(session=session, ministry_id=ministry_id)
    ministry.quota_used = quota.subtract(ministry.quota_used, cost)
    session.add(ministry)
    return ministry
