"""The workflow registry, the typed inputs' two projections, and the README's walkthrough."""

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator import workflows
from orchestrator.catalog import service as catalog
from orchestrator.operations.models import WORKFLOW_STEPS, OperationKind
from orchestrator.policy import Action
from orchestrator.services.models import ServiceStatus
from orchestrator.workflows.inputs import Platform, ServiceInputs
from orchestrator.workflows.shape import Step, Workflow

pytestmark = pytest.mark.unit

README = Path(__file__).parents[2] / "README.md"


def inputs(**overrides: Any) -> ServiceInputs:
    offering = catalog.get_offering("web-hosting")
    values: dict[str, Any] = {
        "ministry_id": uuid.UUID(int=1),
        "ministry_code": "health",
        "ministry_name": "Ministry of Health",
        "service_id": uuid.UUID(int=2),
        "request_id": uuid.UUID(int=3),
        "stack_name": "health-web-hosting-00000002",
        "offering": offering,
        "plan": catalog.get_plan(offering, "small"),
        "parameters": {"name": "portal", "domain": "portal.health.gov.example"},
        "platform": Platform(
            site_name="primary",
            external_network="public",
            management_cidr="10.0.0.0/24",
            image="debian-12",
            subnet_pool="tenants",
        ),
        "ssh_public_key": "ssh-ed25519 AAAA tonle",
    }
    values.update(overrides)
    return ServiceInputs(**values)


def test_the_built_in_kinds_each_have_one_workflow_and_operations_know_their_steps() -> None:
    found = workflows.load()
    assert {OperationKind.provision, OperationKind.modify, OperationKind.decommission, OperationKind.action} <= set(
        found
    )
    assert found[OperationKind.provision].step_names == ("plan", "apply", "install_devices", "configure", "verify")
    assert found[OperationKind.decommission].step_names == ("final_backup", "remove_devices", "destroy", "release")
    assert found[OperationKind.action].service_on_failure is None  # a failed playbook leaves the service be
    for kind, workflow in found.items():
        assert WORKFLOW_STEPS[kind] == workflow.step_names


def test_a_workflow_refuses_duplicate_or_missing_steps() -> None:
    with pytest.raises(ValueError, match="unique"):
        Workflow(kind="twice", steps=(Step("a", print), Step("a", print)))
    with pytest.raises(ValueError):
        Workflow(kind="empty", steps=())
    with pytest.raises(LookupError, match="no workflow"):
        workflows.get("no-such-kind")


def test_stack_config_is_the_contract_of_stacks() -> None:
    assert inputs().stack_config() == {
        "tonle:ministry": "health",
        "tonle:serviceId": str(uuid.UUID(int=2)),
        "tonle:requestId": str(uuid.UUID(int=3)),
        "tonle:offering": "web-hosting",
        "tonle:plan": "small",
        "tonle:sizes": dict(catalog.get_plan(catalog.get_offering("web-hosting"), "small").sizes),
        "tonle:parameters": {"name": "portal", "domain": "portal.health.gov.example"},
        "tonle:externalNetwork": "public",
        "tonle:managementCidr": "10.0.0.0/24",
        "tonle:image": "debian-12",
        "tonle:subnetPool": "tenants",
        "tonle:sshPublicKey": "ssh-ed25519 AAAA tonle",
    }
    assert "tonle:sshPublicKey" not in inputs(ssh_public_key=None).stack_config()


def test_ansible_vars_carry_the_action_only_for_a_day2_action() -> None:
    provision = inputs().ansible_vars(endpoints={"url": "https://portal.health.gov.example"})
    assert set(provision) == {"tonle", "parameters", "endpoints"}
    assert provision["tonle"]["service_id"] == str(uuid.UUID(int=2))
    assert provision["endpoints"] == {"url": "https://portal.health.gov.example"}
    restart = inputs(action="restart").ansible_vars(endpoints={})
    assert restart["action"] == {"name": "restart", "files": {}}
    # Projections copy: changing what they return leaves the inputs as they were.
    provision["parameters"]["domain"] = "{{ lookup('pipe', 'id') }}"
    assert inputs().ansible_vars(endpoints={})["parameters"]["domain"] == "portal.health.gov.example"


def test_the_readme_walkthrough_builds_a_day2_workflow() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    walkthrough = next(block for block in blocks if "WORKFLOW = Workflow(" in block)
    namespace: dict[str, Any] = {"__name__": "readme_walkthrough"}
    exec(compile(walkthrough, "README.md", "exec"), namespace)
    workflow = namespace["WORKFLOW"]
    assert isinstance(workflow, Workflow) and workflow.day2_action
    assert workflow.signals == {"confirmed": Action.restore}
    assert workflow.service_on_failure == ServiceStatus.failed
