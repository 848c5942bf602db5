"""Decommission: a final backup, the stack destroyed, the quota given back; the service retires."""

from orchestrator.operations.models import OperationKind
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
    with ctx.transaction() as session:
        requests.release_quota_of(session=session, request_id=ctx.inputs.request_id)


WORKFLOW = Workflow(
    kind=OperationKind.decommission,
    summary="back up, destroy and retire a service",
    steps=(
        Step("final_backup", steps.final_backup),
        Step("destroy", steps.destroy),
        Step("release", release),
    ),
    service_while_running=ServiceStatus.decommissioning,
    service_on_success=ServiceStatus.retired,
    service_on_failure=ServiceStatus.failed,
)
