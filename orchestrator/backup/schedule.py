"""The backup schedule the job queue keeps (`orchestrator/jobs/queue.py`): which services' backups
are due, starting them as the system, and leaving a trace when a due backup cannot start.

A due backup is started as a `backup` operation; the operation's success moves the policy's
`last_backup_at` and `next_backup_due_at`. Until then the next attempt waits `RETRY_AFTER` (or
the interval, if shorter), so a failing backup is retried, not started every few minutes. A
backup that cannot start (the service is busy with another operation, or not active) is a miss:
`last_missed_at` and `last_missed_reason` on the policy, an audit entry once per due time, and a
warning in the log; `next_backup_due_at` stays in the past, so the policy shows it overdue.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from orchestrator.actors import SYSTEM
from orchestrator.audit import service as audit
from orchestrator.backup import policies
from orchestrator.backup.models import BackupPolicy
from orchestrator.operations import service as operations
from orchestrator.operations.models import IN_PROGRESS, OperationKind
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus

log = logging.getLogger("tonle.backup.schedule")

# Queues a backup operation on the locked service with these parameters; the job queue passes
# `workflows.commands.start` (this package sits below the workflows, so it cannot import them).
StartBackup = Callable[[Session, Service, dict[str, object]], uuid.UUID]

RETRY_AFTER = timedelta(hours=1)
CHECK_EVERY = timedelta(days=7)


@dataclass(frozen=True)
class Started:
    service_id: uuid.UUID
    operation_id: uuid.UUID
    due_at: datetime
    check: bool


@dataclass(frozen=True)
class Missed:
    service_id: uuid.UUID
    due_at: datetime
    reason: str


def is_due(backup_policy: BackupPolicy, *, now: datetime) -> bool:
    return backup_policy.next_backup_due_at is not None and backup_policy.next_backup_due_at <= now


def check_due(backup_policy: BackupPolicy, *, now: datetime) -> bool:
    """Whether the weekly repository check should ride on the next backup."""
    return backup_policy.last_check_at is None or backup_policy.last_check_at + CHECK_EVERY <= now


def retry_at(backup_policy: BackupPolicy, *, now: datetime) -> datetime:
    """When to try again if the backup just started does not succeed."""
    return now + min(RETRY_AFTER, timedelta(hours=backup_policy.backup_every_hours))


def start_due(*, session: Session, service_id: uuid.UUID, now: datetime, start: StartBackup) -> Started | Missed | None:
    """Start the service's backup if it is due; None when it is not due (or one is running).

    Call in a transaction of its own per service: it locks the service row."""
    backup_policy = policies.get(session=session, service_id=service_id)
    if not is_due(backup_policy, now=now):
        return None  # most ticks, for most services: no row lock taken
    service = services.lock(session=session, service_id=service_id)
    due_at = backup_policy.next_backup_due_at
    assert due_at is not None
    running = [
        op for op in operations.list_for_service(session=session, service_id=service_id) if op.status in IN_PROGRESS
    ]
    if any(op.kind == OperationKind.backup for op in running):
        return None  # it is happening
    reason = _cannot_start(service, running_kinds=[str(op.kind) for op in running])
    if reason is not None:
        return _miss(session=session, backup_policy=backup_policy, due_at=due_at, reason=reason, now=now)
    check = check_due(backup_policy, now=now)
    operation_id = start(session, service, {"scheduled": True, "due_at": due_at.isoformat(), "check": check})
    backup_policy.next_backup_due_at = retry_at(backup_policy, now=now)
    session.add(backup_policy)
    return Started(service_id=service_id, operation_id=operation_id, due_at=due_at, check=check)


def _cannot_start(service: Service, *, running_kinds: list[str]) -> str | None:
    if service.status != ServiceStatus.active:
        return f"the service is {service.status}"
    if running_kinds:
        return f"the service is busy with a {', '.join(sorted(set(running_kinds)))} operation"
    return None


def _miss(*, session: Session, backup_policy: BackupPolicy, due_at: datetime, reason: str, now: datetime) -> Missed:
    first_for_this_due_time = backup_policy.last_missed_at is None or backup_policy.last_missed_at < due_at
    backup_policy.last_missed_at = now
    backup_policy.last_missed_reason = f"backup due at {due_at.isoformat()} could not start: {reason}"
    session.add(backup_policy)
    if first_for_this_due_time:
        audit.record(
            session=session,
            actor=SYSTEM,
            entity="backup_policy",
            entity_id=backup_policy.service_id,
            ministry_id=backup_policy.ministry_id,
            action="backup.missed",
            detail={"due_at": due_at.isoformat(), "reason": reason},
        )
        log.warning("service %s: %s", backup_policy.service_id, backup_policy.last_missed_reason)
    return Missed(service_id=backup_policy.service_id, due_at=due_at, reason=reason)


def run(*, now: datetime, start: StartBackup) -> list[Started | Missed]:
    """One pass of the schedule over every active service with backups, one transaction each
    (one service's error is logged and does not stop the others)."""
    from orchestrator.database.unit_of_work import unit_of_work

    with unit_of_work() as uow:
        service_ids = [s.id for s in policies.services_with_backups(session=uow.session)]
    outcomes: list[Started | Missed] = []
    for service_id in service_ids:
        try:
            with unit_of_work() as uow:
                outcome = start_due(session=uow.session, service_id=service_id, now=now, start=start)
                uow.commit()
        except Exception:
            log.exception("service %s: the backup schedule could not decide", service_id)
            continue
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes
