"""The catalogue of restore points: the snapshots each service's repositories hold, kept in step
with the repositories (`sync`). A snapshot retention pruned stays as a row with `pruned_at` set,
so a drill report naming it can still be read; listings leave pruned points out."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from orchestrator.actors import Actor
from orchestrator.backup.models import RestorePoint
from orchestrator.backup.repository import Snapshot
from orchestrator.database.columns import utcnow
from orchestrator.errors import NotFound
from orchestrator.services import service as services


def latest(*, session: Session, service_id: uuid.UUID) -> RestorePoint | None:
    """The newest restore point of the service that retention has not pruned."""
    return session.exec(
        select(RestorePoint)
        .where(RestorePoint.service_id == service_id, col(RestorePoint.pruned_at).is_(None))
        .order_by(col(RestorePoint.taken_at).desc())
        .limit(1)
    ).first()


def get(*, session: Session, service_id: uuid.UUID, restore_point_id: uuid.UUID) -> RestorePoint:
    """One restore point of the service, pruned or not (NotFound if it is not the service's)."""
    found = session.get(RestorePoint, restore_point_id)
    if found is None or found.service_id != service_id:
        raise NotFound(f"restore point {restore_point_id} of service {service_id} not found", field="restore_point")
    return found


def list_for_service(
    *, session: Session, actor: Actor, service_id: uuid.UUID, include_pruned: bool = False
) -> Sequence[RestorePoint]:
    """The service's restore points, newest first (another ministry's service is not found)."""
    services.get(session=session, actor=actor, service_id=service_id)
    query = select(RestorePoint).where(RestorePoint.service_id == service_id)
    if not include_pruned:
        query = query.where(col(RestorePoint.pruned_at).is_(None))
    return session.exec(query.order_by(col(RestorePoint.taken_at).desc(), col(RestorePoint.host))).all()


def known_sizes(*, session: Session, service_id: uuid.UUID) -> dict[str, int]:
    rows = session.exec(
        select(RestorePoint.snapshot_id, RestorePoint.size_bytes).where(RestorePoint.service_id == service_id)
    ).all()
    return {snapshot_id: size for snapshot_id, size in rows}


def sync(
    *,
    session: Session,
    service_id: uuid.UUID,
    ministry_id: uuid.UUID,
    host: str,
    snapshots: Sequence[Snapshot],
    operation_id: uuid.UUID | None = None,
    operation_started_at: datetime | None = None,
) -> tuple[list[RestorePoint], list[RestorePoint]]:
    """Make the host's catalogue what its repository holds: new snapshots in, rows whose
    snapshot is gone marked pruned. Returns (added, pruned).

    A new snapshot taken after `operation_started_at` is credited to `operation_id` (the backup
    operation that made it); older new ones came from the host's own timer."""
    present = {s.id: s for s in snapshots}
    rows = session.exec(
        select(RestorePoint).where(RestorePoint.service_id == service_id, RestorePoint.host == host)
    ).all()
    known = {row.snapshot_id: row for row in rows}
    added = []
    for snapshot in snapshots:
        if snapshot.id in known:
            continue
        row = RestorePoint(
            service_id=service_id,
            ministry_id=ministry_id,
            host=host,
            snapshot_id=snapshot.id,
            taken_at=snapshot.taken_at,
            size_bytes=snapshot.size_bytes or 0,
            checksum=snapshot.checksum,
            operation_id=operation_id
            if operation_started_at is not None and snapshot.taken_at >= operation_started_at
            else None,
        )
        session.add(row)
        added.append(row)
    pruned = []
    now = utcnow()
    for row in rows:
        if row.pruned_at is None and row.snapshot_id not in present:
            row.pruned_at = now
            session.add(row)
            pruned.append(row)
    session.flush()
    return added, pruned
