"""Ministries and their quota. Reservations lock the ministry row so concurrent orders queue."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, select

from orchestrator import quota
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.database.queries import locked
from orchestrator.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from orchestrator.ministry import domains
from orchestrator.ministry.models import Ministry, MinistryCreate, MinistryUpdate

# Serialises changes to any ministry's DNS suffixes, so two concurrent changes cannot both pass
# the overlap check. Orders only read suffixes and never take it.
_SUFFIXES_LOCK = 0x746F6E6C65_01  # "tonle" + 1


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
    _check_suffixes(session=session, suffixes=data.dns_suffixes, ministry_id=None)
    ministry = Ministry(
        code=data.code,
        name=data.name,
        quota_limits=quota.normalise(data.quota_limits.model_dump()),
        dns_suffixes=list(data.dns_suffixes),
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
        detail={"code": ministry.code, "quota_limits": ministry.quota_limits, "dns_suffixes": ministry.dns_suffixes},
    )
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
    if data.dns_suffixes is not None:
        # Services already built under a removed suffix keep running; only new orders are refused.
        _check_suffixes(session=session, suffixes=data.dns_suffixes, ministry_id=ministry.id)
        changes["dns_suffixes"] = {"from": ministry.dns_suffixes, "to": list(data.dns_suffixes)}
        ministry.dns_suffixes = list(data.dns_suffixes)
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
    return ministry


def check_dns_names(*, suffixes: Sequence[str], names: Sequence[tuple[str, str]]) -> None:
    """Refuse (422, naming each field) any (field, DNS name) outside the ministry's own suffixes."""
    if not names:
        return
    problems = domains.outside(names, suffixes)
    if problems:
        first = problems[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", field=first["field"], errors=problems)


def _check_suffixes(*, session: Session, suffixes: Sequence[str], ministry_id: uuid.UUID | None) -> None:
    """Suffixes (already normalised) must not repeat or nest, nor overlap another ministry's."""
    for index, suffix in enumerate(suffixes):
        earlier = next((s for s in suffixes[:index] if domains.overlaps(suffix, s)), None)
        if earlier is not None:
            raise InvalidInput(
                f"'{suffix}' overlaps '{earlier}' earlier in the list; list each suffix once, without names under it",
                field=f"dns_suffixes.{index}",
            )
    if not suffixes:
        return
    session.exec(select(func.pg_advisory_xact_lock(_SUFFIXES_LOCK))).one()
    query = select(Ministry.code, Ministry.dns_suffixes)
    if ministry_id is not None:
        query = query.where(Ministry.id != ministry_id)
    others = session.exec(query).all()
    for index, suffix in enumerate(suffixes):
        for code, theirs in others:
            clash = next((s for s in theirs if domains.overlaps(suffix, s)), None)
            if clash is not None:
                raise Conflict(
                    f"'{suffix}' overlaps '{clash}', which ministry '{code}' owns", field=f"dns_suffixes.{index}"
                )


def lock(*, session: Session, ministry_id: uuid.UUID) -> Ministry:
    """The ministry row under `SELECT ... FOR UPDATE`, held until the transaction ends."""
    ministry = locked(session, Ministry, ministry_id)
    if ministry is None:
        raise NotFound(f"ministry {ministry_id} not found")
    return ministry


@dataclass(frozen=True)
class QuotaAccount:
    """A ministry's quota (and what an order checks beside it), read under the ministry's row lock."""

    ministry_id: uuid.UUID
    code: str
    dns_suffixes: list[str]
    limits: dict[str, int]
    used: dict[str, int]


# Quota moves on the hottest path (every order that is not one statement, see requests/placement.py):
# plain statements, compiled once, on the unit of work's own connection, rather than a Ministry
# object through the ORM's unit of work. A Ministry object loaded earlier in the same
# transaction keeps the quota it read; no quota-moving transaction reads quota from one.
_MINISTRY = Ministry.__table__  # type: ignore[attr-defined]
_LOCK_ACCOUNT = (
    sa.select(
        _MINISTRY.c.id, _MINISTRY.c.code, _MINISTRY.c.dns_suffixes, _MINISTRY.c.quota_limits, _MINISTRY.c.quota_used
    )
    .where(_MINISTRY.c.id == sa.bindparam("ministry_id"))
    # FOR NO KEY UPDATE: quota moves queue behind each other, but not behind the key-share locks
    # that rows referring to the ministry take (its requests and services, inserted meanwhile).
    .with_for_update(key_share=True)
)
_SET_USED = (
    sa.update(_MINISTRY).where(_MINISTRY.c.id == sa.bindparam("ministry_id")).values(quota_used=sa.bindparam("used"))
)


def lock_account(*, session: Session, ministry_id: uuid.UUID) -> QuotaAccount:
    """The ministry's quota under `SELECT ... FOR NO KEY UPDATE`, held until the transaction ends:
    the ministry's orders and releases queue behind it, so every check sees every earlier one."""
    row = session.connection().execute(_LOCK_ACCOUNT, {"ministry_id": ministry_id}).first()
    if row is None:
        raise NotFound(f"ministry {ministry_id} not found")
    _suffixes_seen[row.id] = row.dns_suffixes
    return QuotaAccount(
        ministry_id=row.id, code=row.code, dns_suffixes=row.dns_suffixes, limits=row.quota_limits, used=row.quota_used
    )


def suffixes_seen(ministry_id: uuid.UUID) -> list[str] | None:
    """The ministry's DNS suffixes as this process last read them under its lock, if it has.

    A hint, never an authority: an order that checks its names against them is charged by
    `guarded_charge.GUARDED_CHARGE`, which refuses unless they are still the ministry's, and is
    then checked again under the lock (which reads them afresh).
    """
    return _suffixes_seen.get(ministry_id)


# Ministry ids to their DNS suffixes; as many entries as ministries this process has locked.
_suffixes_seen: dict[uuid.UUID, list[str]] = {}


def charge(*, session: Session, account: QuotaAccount, cost: Mapping[str, int]) -> QuotaAccount:
    """Take `cost` from a locked account or raise QuotaExceeded; returns the account after it."""
    check_charge(account=account, cost=cost)
    return _set_used(session=session, account=account, used=quota.add(account.used, cost))


def check_charge(*, account: QuotaAccount, cost: Mapping[str, int]) -> None:
    """Raise QuotaExceeded, naming each resource short, unless `cost` fits the account's quota."""
    over = quota.shortfall(limits=account.limits, used=account.used, cost=cost)
    if over:
        names = ", ".join(
            f"{name} (requested {v['requested']}, remaining {v['remaining']})" for name, v in over.items()
        )
        raise QuotaExceeded(
            f"ministry '{account.code}' has not enough quota left: {names}",
            field="plan",
            shortfall=over,
        )


def reserve(*, session: Session, ministry_id: uuid.UUID, cost: Mapping[str, int]) -> QuotaAccount:
    """Take `cost` from the ministry's quota or raise QuotaExceeded."""
    return charge(session=session, account=lock_account(session=session, ministry_id=ministry_id), cost=cost)


def release(*, session: Session, ministry_id: uuid.UUID, cost: Mapping[str, int]) -> QuotaAccount:
    """Give `cost` back to the ministry's quota."""
    account = lock_account(session=session, ministry_id=ministry_id)
    return _set_used(session=session, account=account, used=quota.subtract(account.used, cost))


def _set_used(*, session: Session, account: QuotaAccount, used: dict[str, int]) -> QuotaAccount:
    session.connection().execute(_SET_USED, {"ministry_id": account.ministry_id, "used": used})
    return replace(account, used=used)
