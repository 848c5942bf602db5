"""Failback: a failed-over service brought home. A fresh backup of the DR copy, restored into the
service's own stack at the primary site (rebuilt first: whatever the disaster took is made
again), checked, the DNS names pointed back, then the DR copy destroyed and its cleanup verified.

Asked for and approved like a failover. If a step fails before the names are pointed back, the
DR copy keeps serving and nothing of it is touched; the report says what failed.
"""

from typing import Any

from sqlmodel import col, select

from orchestrator.backup import restore_points
from orchestrator.operations.models import Operation, OperationKind, OperationStatus
from orchestrator.ports import StepFailed
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus
from orchestrator.workflows import backup, dr_copy, dr_report, failover, restore, steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Finish, Step, Workflow

PRIMARY_SITE = "primary"


def prepare(ctx: StepContext) -> None:
    """Take over the facts of the failover that made the DR copy (its stack, names, host keys)."""
    known = dr_copy.state(ctx)
    if known.get("reported_at"):
        raise StepFailed("this failback has ended and been reported; ask for a new one")
    if known.get("mode"):
        return
    with ctx.transaction() as session:
        copy = _failover_facts(session, ctx)
    dr_copy.remember(
        ctx,
        mode="failover",
        started_at=dr_copy.now().isoformat(),
        copy_stack=copy["copy_stack"],
        copy_id=copy["copy_id"],
        site=copy["site"],
        host_keys=copy.get("host_keys") or {},
        egress_allowed=[],
        # The copy exists: destroying it is this workflow's to do.
        build_started_at=copy.get("build_started_at") or dr_copy.now().isoformat(),
        failover_operation_id=copy["operation_id"],
    )


def _failover_facts(session: Any, ctx: StepContext) -> dict[str, Any]:
    service = session.get(Service, ctx.inputs.service_id)
    assert service is not None
    last = session.exec(
        select(Operation)
        .where(
            Operation.service_id == ctx.inputs.service_id,
            Operation.kind == OperationKind.failover,
            Operation.status == OperationStatus.succeeded,
        )
        .order_by(col(Operation.finished_at).desc())
    ).first()
    facts = dict((last.parameters.get(dr_copy.STATE) or {}) if last is not None else {})
    if last is None or not service.dr_stack_name or facts.get("copy_stack") != service.dr_stack_name:
        raise StepFailed(
            f"no failover of this service made its DR copy {service.dr_stack_name or '(none recorded)'}: "
            "nothing to fail back from"
        )
    return {**facts, "operation_id": str(last.id)}


def back_up_copy(ctx: StepContext) -> None:
    """What the service holds now, at the DR site, into its repository."""
    if dr_copy.state(ctx).get("copy_backed_up_at"):
        return
    backup.back_up(dr_copy.copy_context(ctx))
    dr_copy.remember(ctx, copy_backed_up_at=dr_copy.now().isoformat())


def catalogue(ctx: StepContext) -> None:
    """The new snapshot among the restore points; it is the one to restore at home."""
    if dr_copy.state(ctx).get("restore_point"):
        return
    backup.catalogue(ctx)
    with ctx.transaction() as session:
        point = restore_points.latest(session=session, service_id=ctx.inputs.service_id)
        if point is None:
            raise StepFailed("the DR copy's backup left no restore point")
        chosen = dr_copy.restore_point_facts(point)
    dr_copy.remember(ctx, restore_point=chosen)


def rebuild_primary(ctx: StepContext) -> None:
    """The service's own stack at the primary site, made whole again if the disaster took parts."""
    steps.apply(ctx)


def point_dns_home(ctx: StepContext) -> None:
    """Names back to the primary site's address: from here the service runs at home, whatever
    becomes of the DR copy (a copy that will not go is named in the report, not served)."""
    address = (ctx.outputs.get("endpoints") or {}).get("public_address")
    if not address:
        raise StepFailed("the service's stack outputs no public address to point DNS back at")
    failover.point_names(ctx, address=str(address), fact="dns_home_at")
    with ctx.transaction() as session:
        service = services.lock(session=session, service_id=ctx.inputs.service_id)
        service.running_at = PRIMARY_SITE
        session.add(service)


def forget_copy(finish: Finish) -> None:
    """The DR copy is gone, verified."""
    finish.service.running_at = PRIMARY_SITE
    finish.service.dr_stack_name = None
    finish.session.add(finish.service)


WORKFLOW = Workflow(
    kind=OperationKind.failback,
    summary="back up the DR copy, restore it at the primary site, point DNS home, destroy the copy",
    steps=(
        Step("prepare", prepare),
        Step("back_up_copy", back_up_copy),
        Step("catalogue", catalogue),
        Step("rebuild_primary", rebuild_primary),
        Step("configure_primary", steps.configure),
        Step("restore_primary", restore.restore_in_place),
        Step("check_primary_data", restore.check_data),
        Step("check_primary", restore.check_health),
        Step("point_dns_home", point_dns_home),
        Step("destroy_copy", dr_copy.destroy),
        Step("verify_cleanup", dr_copy.verify_cleanup),
        dr_report.report_step(kind=OperationKind.failback, recovered_at="dns_home_at"),
    ),
    service_while_running=ServiceStatus.failing_back,
    service_on_success=ServiceStatus.active,
    service_on_failure=ServiceStatus.active,
    retryable=False,
    on_success=forget_copy,
)
