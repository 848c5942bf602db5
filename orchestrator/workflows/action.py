"""A day-2 action: the one playbook the offering names for it, on the running service.

Offerings add such actions in their YAML (`day2_playbooks`) with no code; an action that needs
more than one playbook run is a workflow module of its own.
"""

from orchestrator.operations.models import OperationKind
from orchestrator.ports import StepFailed
from orchestrator.workflows import steps
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Step, Workflow


def run(ctx: StepContext) -> None:
    """The playbook with the operation's uploads (playbooks find them as `action.files.<name>`)."""
    action, offering = ctx.inputs.action, ctx.inputs.offering
    playbook = offering.day2_playbooks.get(action or "")
    if playbook is None:
        raise StepFailed(f"offering {offering.id} has no playbook for '{action}'")
    steps.run_playbook(ctx, playbook, files=ctx.files)


# A failed action leaves the service running as it was: no service status here.
WORKFLOW = Workflow(kind=OperationKind.action, summary="run a day-2 playbook", steps=(Step("run", run),))
