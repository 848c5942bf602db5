"""Failover: the service restored for real at the DR site, its DNS names repointed there.

Asked for by the ministry or its automation (`POST /v1/services/{id}/actions/failover`), started
when an operator approves the request (`requests.submit_dr_move`). It first tries a last backup
of the primary site (a planned failover loses nothing; in a disaster the primary does not answer
and the latest restore point is what there is), then builds the copy as a drill does
(`dr_copy.py`, mode `failover`: ordinary egress, public ports open) but with the backup agent,
so the service keeps being backed up while it runs there, checks it, and repoints the A records
of the service's names to the copy. The service then runs at the DR site until a failback.

If anything fails, the names point where they pointed before and the copy is destroyed (cleanup
verified): the service stays where it ran. The report gives RTO (start → DNS repointed) and the
data lost (start - the restore point's time).
"""

from orchestrator.operations.models import Operation, OperationKind, StepStatus
from orchestrator.ports import ProgressEvent, StepFailed, TransientError
from orchestrator.services.models import ServiceStatus
from orchestrator.workflows import backup, dr_copy, dr_report, steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Finish, Step, Workflow

DR_SITE = "dr"


def prepare(ctx: StepContext) -> None:
    known = dr_copy.state(ctx)
    if known.get("reported_at"):
        raise StepFailed("this failover has ended and been reported; ask for a new one")
    dr_copy.begin(ctx, mode="failover", restore_point={})


def back_up_primary(ctx: StepContext) -> None:
    """A last backup of the primary site, if it answers; a failover does not wait for a dead site."""
    if dr_copy.state(ctx).get("primary_backup"):
        return
    try:
        backup.back_up(ctx)
        backup.catalogue(ctx)
        outcome = "taken"
    except (StepFailed, TransientError) as exc:
        outcome = "failed"
        ctx.emit(
            ProgressEvent(
                type="dr.primary_backup",
                message=f"no last backup of the primary site ({exc}); failing over from the latest restore point",
                level="warning",
            )
        )
    dr_copy.remember(ctx, primary_backup=outcome)


def choose_restore_point(ctx: StepContext) -> None:
    known = dr_copy.state(ctx)
    if known.get("restore_point"):
        return
    with ctx.transaction() as session:
        chosen = dr_copy.choose_restore_point(session, ctx.inputs.service_id, None)
    dr_copy.remember(ctx, restore_point=chosen)


def install_backup_agent(ctx: StepContext) -> None:
    """The copy serves for real now: it is backed up into the service's repository, as the
    primary was, so that a failback restores what changed at the DR site."""
    if ctx.inputs.offering.backup_tier == "none":
        return
    steps.run_playbook(dr_copy.copy_context(ctx), dr_copy.BACKUP_AGENT_PLAYBOOK)


def repoint_dns(ctx: StepContext) -> None:
    """The service's names answer the copy's address."""
    copy = dr_copy.copy_context(ctx)
    address = (copy.outputs.get("endpoints") or {}).get("public_address")
    if not address:
        raise StepFailed(f"the copy's stack {copy.inputs.stack_name} outputs no public address to point DNS at")
    point_names(ctx, address=str(address), fact="dns_repointed_at")


def point_names(ctx: StepContext, *, address: str, fact: str) -> None:
    """Point the service's names at `address`; the time is written down as `fact` (the RTO's end)."""
    names = list((ctx.outputs.get("endpoints") or {}).get("dns_names") or [])
    dns = ctx.adapters.dns
    if dns is None or not names:
        ctx.emit(
            ProgressEvent(
                type="dns.repointed",
                message="no DNS service or no names: nothing repointed"
                if dns is None
                else "the service has no DNS names to repoint",
                level="warning" if dns is None else "info",
            )
        )
        before: dict[str, list[str]] = {}
    else:
        before = dns.point(ministry_code=ctx.inputs.ministry_code, names=names, address=address, on_event=ctx.emit)
    known = dr_copy.state(ctx)
    first_before = (known.get("dns") or {}).get("before") or before
    dr_copy.remember(
        ctx,
        dns={"names": names, "address": address, "before": first_before},
        **({} if known.get(fact) else {fact: dr_copy.now().isoformat()}),
    )


def undo_if_failed(ctx: StepContext) -> None:
    """After a failure only: names back to what they held, the copy destroyed, cleanup verified."""
    if not _a_step_failed(ctx):
        return
    known = dr_copy.state(ctx)
    dns = ctx.adapters.dns
    for name, addresses in ((known.get("dns") or {}).get("before") or {}).items():
        if dns is not None and addresses:
            dns.point(ministry_code=ctx.inputs.ministry_code, names=[name], address=addresses[0], on_event=ctx.emit)
    dr_copy.destroy(ctx)
    dr_copy.verify_cleanup(ctx)


def _a_step_failed(ctx: StepContext) -> bool:
    with ctx.transaction() as session:
        operation = session.get(Operation, ctx.operation_id)
        assert operation is not None
        return any(step.status == StepStatus.failed for step in operation.step_list())


def runs_at_dr(finish: Finish) -> None:
    """The service runs at the DR site, from the copy's stack, until it fails back."""
    known = finish.operation.parameters.get(dr_copy.STATE) or {}
    finish.service.running_at = DR_SITE
    finish.service.dr_stack_name = known.get("copy_stack")
    finish.session.add(finish.service)


WORKFLOW = Workflow(
    kind=OperationKind.failover,
    summary="restore the service at the DR site for real and repoint its DNS names there",
    steps=(
        Step("prepare", prepare),
        Step("back_up_primary", back_up_primary),
        Step("choose_restore_point", choose_restore_point),
        Step("build_copy", dr_copy.build),
        Step("configure_copy", dr_copy.configure),
        Step("restore_data", dr_copy.restore),
        Step("install_backup_agent", install_backup_agent),
        # The data before the health check, as in a drill: a site that answers writes to its database.
        Step("check_data", dr_copy.check_data),
        Step("check_health", dr_copy.check_health),
        Step("repoint_dns", repoint_dns),
        Step("undo_if_failed", undo_if_failed, always=True),
        dr_report.report_step(kind=OperationKind.failover, recovered_at="dns_repointed_at"),
    ),
    service_while_running=ServiceStatus.failing_over,
    service_on_success=ServiceStatus.active,
    service_on_failure=ServiceStatus.active,
    retryable=False,
    on_success=runs_at_dr,
)
