"""Provision: build the ordered service's stack, configure its hosts, check it answers."""

from orchestrator.operations.models import OperationKind
from orchestrator.policy import Action
from orchestrator.services.models import ServiceStatus
from orchestrator.workflows import steps
from orchestrator.workflows.shape import Workflow

WORKFLOW = Workflow(
    kind=OperationKind.provision,
    summary="build an approved order's service",
    steps=steps.BUILD,
    service_while_running=ServiceStatus.provisioning,
    service_on_success=ServiceStatus.active,
    service_on_failure=ServiceStatus.failed,
    # Co-location: the technicians' last mark-installed (orchestrator/installation.py).
    signals={"installed": Action.install_devices},
)
