"""A backup now (`POST /v1/services/{id}/actions/backup`, and the schedule's backups): the hosts'
backup agents back up and apply the policy's retention, then the orchestrator reads the
repositories and catalogues the restore points (new snapshots in, pruned ones marked).

Parameters (set by the scheduler, `orchestrator/backup/schedule.py`): `scheduled` with `due_at`
when the schedule asked for it; `check: true` to also run the weekly `restic check
--read-data-subset` on each host and record its result on the policy.
"""

from datetime import timedelta
from typing import Any

from orchestrator.backup import policies
from orchestrator.backup.catalogue import ServiceRepositories
from orchestrator.backup.catalogue import sync_service as catalogue_service
from orchestrator.database.columns import utcnow
from orchestrator.noop import NoopEngine
from orchestrator.operations.models import Operation, OperationKind
from orchestrator.ports import ProgressEvent, StepFailed
from orchestrator.workflows import steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow

CHECK_PLAYBOOK = "backup_check"
# Snapshot times are the host's clock, operation times the orchestrator's.
CLOCK_SKEW = timedelta(minutes=5)


def back_up(ctx: StepContext) -> None:
    if not _hosts(ctx):
        return
    steps.run_playbook(ctx, steps.FINAL_BACKUP_PLAYBOOK)


def catalogue(ctx: StepContext) -> None:
    """Read each host's repository into the restore points; this backup's snapshot must be there."""
    hosts = _hosts(ctx)
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        started = operation.started_at if operation is not None else None
    started_at = started - CLOCK_SKEW if started is not None else None
    synced = catalogue_service(
        service=ServiceRepositories(
            service_id=ctx.inputs.service_id,
            ministry_id=ctx.inputs.ministry_id,
            ministry_code=ctx.inputs.ministry_code,
            ministry_name=ctx.inputs.ministry_name,
            stack_name=ctx.inputs.stack_name,
            hosts=tuple(hosts),
            restic_password=ctx.restic_password,
        ),
        targets=ctx.adapters.backup_targets,
        on_event=ctx.emit,
        operation_id=ctx.operation_id,
        operation_started_at=started_at,
    )
    for host in synced:
        newest = host.newest
        ctx.emit(
            ProgressEvent(
                type="backup.restore_points",
                message=f"{host.host}: {len(host.snapshots)} restore point(s), {len(host.added)} new, "
                f"{len(host.pruned)} pruned" + (f"; newest {newest.id[:8]} {newest.checksum}" if newest else ""),
                data={"host": host.host, "snapshots": len(host.snapshots), "added": host.added, "pruned": host.pruned},
            )
        )
        if newest is None or (started_at is not None and newest.taken_at < started_at):
            raise StepFailed(f"{host.host}: the repository holds no snapshot taken by this backup")
    _record_backup(ctx)


def check(ctx: StepContext) -> None:
    """The weekly repository check, when the operation asks for it; recorded on the policy, pass or fail."""
    if not _parameters(ctx).get("check") or not _hosts(ctx):
        return
    with ctx.transaction() as session:
        subset = policies.tier_of(policies.get(session=session, service_id=ctx.inputs.service_id))
    if "backup" not in ctx.secret_vars:  # a retry resuming here has not run the backup step
        ctx.secret_vars["backup"] = steps.backup_vars(ctx)
    ctx.secret_vars["backup"] = {**ctx.secret_vars["backup"], "check_subset": subset.check_read_data_subset}
    failure: str | None = None
    try:
        steps.run_playbook(ctx, CHECK_PLAYBOOK)
    except StepFailed as exc:
        failure = str(exc)
    with ctx.transaction() as session:
        row = policies.lock(session=session, service_id=ctx.inputs.service_id)
        row.last_check_at = utcnow()
        row.last_check_ok = failure is None
        row.last_check_detail = failure or f"restic check --read-data-subset {subset.check_read_data_subset}: no errors"
        session.add(row)
    ctx.emit(
        ProgressEvent(
            type="backup.check",
            message=f"repository check ({subset.check_read_data_subset} of the data): "
            + ("no errors" if failure is None else failure),
            level="info" if failure is None else "error",
        )
    )
    if failure is not None:
        raise StepFailed(f"repository check failed: {failure}")


def _record_backup(ctx: StepContext) -> None:
    """The backup happened (its snapshots are catalogued): the schedule counts from it, whatever
    the repository check after it finds."""
    with ctx.transaction() as session:
        policies.get(session=session, service_id=ctx.inputs.service_id)
        backup_policy = policies.lock(session=session, service_id=ctx.inputs.service_id)
        now = utcnow()
        backup_policy.last_backup_at = now
        backup_policy.last_backup_operation_id = ctx.operation_id
        backup_policy.next_backup_due_at = policies.next_due(
            last_backup_at=now, created_at=backup_policy.created_at, every_hours=backup_policy.backup_every_hours
        )
        backup_policy.updated_at = now
        session.add(backup_policy)


def _hosts(ctx: StepContext) -> dict[str, Any]:
    hosts: dict[str, Any] = ctx.outputs.get("hosts") or {}
    if not hosts and not isinstance(ctx.adapters.engine, NoopEngine):
        raise StepFailed("the stack outputs no hosts: there is nothing to back up")
    return hosts


def _parameters(ctx: StepContext) -> dict[str, Any]:
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        return dict(operation.parameters) if operation is not None else {}


# A backup leaves the service as it is, whatever happens: no service status here.
WORKFLOW = Workflow(
    kind=OperationKind.backup,
    summary="back the service up now and catalogue its restore points",
    steps=(Step("back_up", back_up), Step("catalogue", catalogue), Step("check", check)),
    day2_action=True,
)
