"""Decommission: a final backup, co-located devices taken out by technicians, the stack
destroyed, the quota (and any rack reservation left) given back; the service retires."""

from orchestrator.dcim import service as dcim_placement
from orchestrator.operations.models import OperationKind
from orchestrator.policy import Action
from orchestrator.requests import service as requests
from orchestrator.services.models import ServiceStatus
from orchestrator.workflows import steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow


def release(ctx: StepContext) -> None:
    """What the service held goes back: its bucket credential (its backup agent's, or for an
    `s3_bucket` offering the ministry's; the bucket stays for the retention period) and the
    ministry's quota. Both are safe to repeat after a crash."""
    if ctx.inputs.offering.backup_tier != "none" or ctx.inputs.offering.s3_bucket:
        ctx.adapters.backup_targets.retire(
            ministry_code=ctx.inputs.ministry_code, stack_name=ctx.inputs.stack_name, on_event=ctx.emit
        )
    if ctx.inputs.offering.rack_devices_from is not None and ctx.adapters.dcim is not None:
        # Units still reserved for devices never installed (a provision that failed or was
        # abandoned): removal only took out what was racked.
        dcim_placement.release(dcim=ctx.adapters.dcim, order_ref=str(ctx.inputs.service_id))
    with ctx.transaction() as session:
        requests.release_quota_of(session=session, request_id=ctx.inputs.request_id)


WORKFLOW = Workflow(
    kind=OperationKind.decommission,
    summary="back up, destroy and retire a service",
    steps=(
        Step("final_backup", steps.final_backup),
        Step("remove_devices", steps.remove_devices),
        Step("destroy", steps.destroy),
        Step("release", release),
    ),
    service_while_running=ServiceStatus.decommissioning,
    service_on_success=ServiceStatus.retired,
    service_on_failure=ServiceStatus.failed,
    signals={"removed": Action.install_devices},
)
