"""Modify: move a service to another plan of its offering (the stack is built for the new plan)."""

from orchestrator.catalog import service as catalog
from orchestrator.operations.models import OperationKind
from orchestrator.policy import Action
from orchestrator.requests import service as requests
from orchestrator.services.models import ServiceStatus
from orchestrator.workflows import steps
from orchestrator.workflows.shape import Finish, Workflow


def settle_plan(finish: Finish) -> None:
    """The service is on its new plan: it holds that plan's quota, and gives back any surplus."""
    service = finish.service
    plan = catalog.get_plan(catalog.get_offering(service.offering_id), finish.operation.parameters["plan"])
    service.plan = plan.id
    service.quota_cost = dict(plan.quota_cost)
    finish.session.add(service)
    requests.settle_held_quota(session=finish.session, request_id=service.request_id, cost=dict(plan.quota_cost))


WORKFLOW = Workflow(
    kind=OperationKind.modify,
    summary="move a service to another plan",
    steps=steps.BUILD,
    service_while_running=ServiceStatus.modifying,
    service_on_success=ServiceStatus.active,
    service_on_failure=ServiceStatus.failed,
    on_success=settle_plan,
    signals={"installed": Action.install_devices},
)
