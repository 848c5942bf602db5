"""Keeping a service's restore points in step with its repositories: read each host's repository
(read-only, on the orchestrator) and sync the catalogue. Used by the backup workflow after a
backup and by the job queue's periodic sync (snapshots of the hosts' own timers, pruned ones)."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from orchestrator.backup import policies, restore_points
from orchestrator.backup.repository import Repository, RepositoryError, ResticReader, Snapshot, repository_url
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.ministry.models import Ministry
from orchestrator.ports import Adapters, BackupTargets, EventSink, StepFailed
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus

log = logging.getLogger("tonle.backup.catalogue")


@dataclass(frozen=True)
class HostSync:
    host: str
    snapshots: list[Snapshot]
    added: list[str]  # snapshot ids
    pruned: list[str]

    @property
    def newest(self) -> Snapshot | None:
        return max(self.snapshots, key=lambda s: s.taken_at, default=None)


@dataclass(frozen=True)
class ServiceRepositories:
    """What reading a service's repositories needs; the password and keys never leave the child's env."""

    service_id: uuid.UUID
    ministry_id: uuid.UUID
    ministry_code: str
    ministry_name: str
    stack_name: str
    hosts: tuple[str, ...]
    restic_password: str | None


def sync_service(
    *,
    service: ServiceRepositories,
    targets: BackupTargets,
    on_event: EventSink,
    reader: ResticReader | None = None,
    operation_id: uuid.UUID | None = None,
    operation_started_at: datetime | None = None,
) -> list[HostSync]:
    """Sync every host's restore points; StepFailed when a repository cannot be read."""
    if not service.hosts:
        return []
    # The orchestrator reads through the site's own endpoint, not the relay its instances use.
    target: dict[str, Any] = targets.ensure(
        ministry_code=service.ministry_code,
        ministry_name=service.ministry_name,
        stack_name=service.stack_name,
        on_event=on_event,
        for_instances=False,
    )
    if not target:  # the no-op adapters: nothing was built, so nothing was backed up
        return []
    if not service.restic_password:
        raise StepFailed("the service has no repository password: its backups cannot be read")
    with unit_of_work() as uow:
        sizes = restore_points.known_sizes(session=uow.session, service_id=service.service_id)
    reader = reader or ResticReader()
    done = []
    for host in sorted(service.hosts):
        repository = Repository(
            url=repository_url(
                s3_endpoint=target["s3_endpoint"],
                bucket=target["bucket"],
                ministry_code=service.ministry_code,
                service_id=str(service.service_id),
                host=host,
            ),
            password=service.restic_password,
            access_key=target["access_key"],
            secret_key=target["secret_key"],
            region=target.get("region") or "us-east-1",
            ca_pem=target.get("ca_pem"),
        )
        try:
            snapshots = reader.snapshots(repository, known_sizes=sizes)
        except RepositoryError as exc:
            raise StepFailed(f"reading the backups of {host}: {exc}") from exc
        with unit_of_work() as uow:
            added, pruned = restore_points.sync(
                session=uow.session,
                service_id=service.service_id,
                ministry_id=service.ministry_id,
                host=host,
                snapshots=snapshots,
                operation_id=operation_id,
                operation_started_at=operation_started_at,
            )
            result = HostSync(
                host=host,
                snapshots=snapshots,
                added=[row.snapshot_id for row in added],
                pruned=[row.snapshot_id for row in pruned],
            )
            uow.commit()
        done.append(result)
    return done


def sync_all(*, adapters: Adapters, on_event: EventSink) -> dict[uuid.UUID, str]:
    """Sync the restore points of every active service with backups; {service_id: error} of those
    whose repositories could not be read (each logged, none stopping the others)."""
    with unit_of_work() as uow:
        wanted = [
            _repositories(uow.session, service, adapters)
            for service in policies.services_with_backups(session=uow.session)
            if service.status == ServiceStatus.active
        ]
    failed: dict[uuid.UUID, str] = {}
    for service in wanted:
        try:
            sync_service(service=service, targets=adapters.backup_targets, on_event=on_event)
        except Exception as exc:
            log.warning("service %s: restore points not synced: %s", service.service_id, exc, exc_info=True)
            failed[service.service_id] = str(exc)
    return failed


def _repositories(session: Session, service: Service, adapters: Adapters) -> ServiceRepositories:
    ministry = session.get(Ministry, service.ministry_id)
    assert ministry is not None
    hosts = adapters.engine.outputs(service.stack_name).get("hosts") or {}
    return ServiceRepositories(
        service_id=service.id,
        ministry_id=service.ministry_id,
        ministry_code=ministry.code,
        ministry_name=ministry.name,
        stack_name=service.stack_name,
        hosts=tuple(hosts),
        restic_password=services.generated_secrets(service).get(services.RESTIC_PASSWORD),
    )
