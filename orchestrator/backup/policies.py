"""Backup policies: one per service whose offering has a backup tier, made from the tier's
defaults the first time anyone asks for it, changed by the ministry within the tier's bounds.

A policy's tier is the offering's `dr_tier` when it has one (the recovery targets and drill
cadence are DR terms), else its `backup_tier`. None of these commits: the caller's unit of work does.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.backup.models import BackupPolicy, BackupPolicyPublic
from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import Offering
from orchestrator.catalog.tiers import RETENTION_PERIODS, DrTier
from orchestrator.database.columns import utcnow
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.services import service as services
from orchestrator.services.models import Service

EDITABLE = ("backup_every_hours", "rpo_target_seconds", "rto_target_seconds", "drill_every_days", "retention")


def tier_name(offering: Offering) -> str | None:
    """The tier a service of this offering is backed up under, or None: nothing to back up."""
    if offering.backup_tier == "none":
        return None
    return offering.dr_tier if offering.dr_tier != "none" else offering.backup_tier


def tier_of(backup_policy: BackupPolicy) -> DrTier:
    return catalog.dr_tiers()[backup_policy.tier]


def get(*, session: Session, service_id: uuid.UUID) -> BackupPolicy:
    """The service's policy, made from its tier's defaults if it has none yet.

    NotFound for a service without a backup tier (a bucket, a colocation rack). No visibility
    check: callers acting for someone use `read`."""
    found = session.get(BackupPolicy, service_id)
    if found is not None:
        return found
    service = session.get(Service, service_id)
    if service is None:
        raise NotFound(f"service {service_id} not found")
    return _create(session=session, service=service)


def read(*, session: Session, actor: Actor, service_id: uuid.UUID) -> BackupPolicy:
    """The policy of a service the actor can see (another ministry's is not found)."""
    services.get(session=session, actor=actor, service_id=service_id)
    return get(session=session, service_id=service_id)


def update(*, session: Session, actor: Actor, service_id: uuid.UUID, changes: dict[str, Any]) -> BackupPolicy:
    """Change the editable fields given in `changes` (retention partially), each within the
    tier's bounds; 422 naming every field out of bounds. Audited."""
    service = services.get(session=session, actor=actor, service_id=service_id)
    policy.require(actor, policy.Action.set_backup_policy, ministry_id=service.ministry_id, entity="service")
    get(session=session, service_id=service_id)  # made first, so the lock below finds a row
    current = lock(session=session, service_id=service_id)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"'{unknown[0]}' cannot be changed (editable: {', '.join(EDITABLE)})", field=unknown[0])
    wanted = proposed(current, changes)
    problems = out_of_bounds(tier_of(current), wanted)
    if problems:
        raise InvalidInput(
            f"{problems[0]['field']}: {problems[0]['message']}", field=problems[0]["field"], errors=problems
        )
    before = snapshot(current)
    current.backup_every_hours = wanted["backup_every_hours"]
    current.rpo_target_seconds = wanted["rpo_target_seconds"]
    current.rto_target_seconds = wanted["rto_target_seconds"]
    current.drill_every_days = wanted["drill_every_days"]
    current.retention = dict(wanted["retention"])
    if before["backup_every_hours"] != current.backup_every_hours:
        current.next_backup_due_at = next_due(
            last_backup_at=current.last_backup_at, created_at=current.created_at, every_hours=current.backup_every_hours
        )
    current.updated_at = utcnow()
    session.add(current)
    audit.record(
        session=session,
        actor=actor,
        entity="backup_policy",
        entity_id=service_id,
        ministry_id=current.ministry_id,
        action="backup_policy.changed",
        detail={"before": before, "after": snapshot(current)},
    )
    return current


def lock(*, session: Session, service_id: uuid.UUID) -> BackupPolicy:
    """The policy row under `SELECT ... FOR UPDATE`, freshly read (it must exist)."""
    return session.exec(
        select(BackupPolicy)
        .where(BackupPolicy.service_id == service_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def proposed(current: BackupPolicy, changes: dict[str, Any]) -> dict[str, Any]:
    """The policy's editable values with `changes` applied (retention merged period by period)."""
    wanted: dict[str, Any] = snapshot(current)
    for name, value in changes.items():
        if name == "retention":
            wanted["retention"] = {**wanted["retention"], **dict(value or {})}
        else:
            wanted[name] = value
    return wanted


def out_of_bounds(tier: DrTier, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Each value that is not an integer within the tier's bounds, as {field, message, min, max}."""
    flat = {name: values[name] for name in EDITABLE if name != "retention"}
    retention = values.get("retention") or {}
    unknown = sorted(set(retention) - set(RETENTION_PERIODS))
    problems: list[dict[str, Any]] = [
        {"field": f"retention.{name}", "message": f"no such retention period (periods: {', '.join(RETENTION_PERIODS)})"}
        for name in unknown
    ]
    flat.update({f"retention.{period}": retention.get(period) for period in RETENTION_PERIODS})
    for field, bound in tier.bounds().items():
        value = flat[field]
        if isinstance(value, bool) or not isinstance(value, int) or not bound.min <= value <= bound.max:
            problems.append(
                {
                    "field": field,
                    "message": f"must be an integer from {bound.min} to {bound.max} (tier bounds); got {value!r}",
                    "min": bound.min,
                    "max": bound.max,
                }
            )
    if not problems and flat["rpo_target_seconds"] < flat["backup_every_hours"] * 3600:
        # A target no schedule can meet: the newest restore point is up to one interval old.
        problems.append(
            {
                "field": "rpo_target_seconds",
                "message": f"must be at least the backup interval ({flat['backup_every_hours'] * 3600} s of "
                f"backup_every_hours={flat['backup_every_hours']}); got {flat['rpo_target_seconds']}",
                "min": flat["backup_every_hours"] * 3600,
            }
        )
    return sorted(problems, key=lambda p: str(p["field"]))


def next_due(*, last_backup_at: datetime | None, created_at: datetime, every_hours: int) -> datetime:
    """When the next backup is due: one interval after the last one (or after the policy was made)."""
    return (last_backup_at or created_at) + timedelta(hours=every_hours)


def snapshot(backup_policy: BackupPolicy) -> dict[str, Any]:
    return {
        "backup_every_hours": backup_policy.backup_every_hours,
        "retention": dict(backup_policy.retention),
        "rpo_target_seconds": backup_policy.rpo_target_seconds,
        "rto_target_seconds": backup_policy.rto_target_seconds,
        "drill_every_days": backup_policy.drill_every_days,
    }


def public(backup_policy: BackupPolicy) -> BackupPolicyPublic:
    bounds = {field: bound.model_dump() for field, bound in tier_of(backup_policy).bounds().items()}
    return BackupPolicyPublic.model_validate({**backup_policy.model_dump(), "bounds": bounds})


def services_with_backups(*, session: Session) -> list[Service]:
    """Services that exist and whose offering has a backup tier; their policies may not exist yet."""
    rows = session.exec(select(Service).where(col(Service.retired_at).is_(None))).all()
    return [s for s in rows if tier_name(catalog.get_offering(s.offering_id)) is not None]


def _create(*, session: Session, service: Service) -> BackupPolicy:
    name = tier_name(catalog.get_offering(service.offering_id))
    if name is None:
        raise NotFound(f"service {service.id} has no backups: its offering '{service.offering_id}' has no backup tier")
    tier = catalog.dr_tiers()[name]
    now = utcnow()
    made = BackupPolicy(
        service_id=service.id,
        ministry_id=service.ministry_id,
        tier=name,
        backup_every_hours=tier.backup_every_hours.default,
        retention={period: getattr(tier.retention, period).default for period in RETENTION_PERIODS},
        rpo_target_seconds=tier.rpo_target_seconds.default,
        rto_target_seconds=tier.rto_target_seconds.default,
        drill_every_days=tier.drill_every_days.default,
        next_backup_due_at=next_due(last_backup_at=None, created_at=now, every_hours=tier.backup_every_hours.default),
        created_at=now,
        updated_at=now,
    )
    # Two callers may make it at once (a GET and the scheduler): the second reads the first's.
    try:
        with session.begin_nested():
            session.add(made)
    except IntegrityError:
        found = session.get(BackupPolicy, service.id)
        assert found is not None
        return found
    return made
