"""Workflows: one module per operation kind, each a declarative `Workflow` named `WORKFLOW`.

Where things go:
- a new operation kind (restore, failover, a co-location installation, ...): one module here with
  `WORKFLOW = Workflow(kind=..., steps=(...), ...)`; `load()` finds it, the runner walks it, the
  API starts it through `commands.start`. Steps shared by several kinds live in `steps.py`.
- a new day-2 action that is one playbook: no code, a `day2_playbooks` entry in the offering's YAML.
- a new adapter (something a step calls outside the database): a protocol in `orchestrator/ports.py`,
  an implementation in its own package, built in `orchestrator/bootstrap.py`.
"""

import importlib
import pkgutil

from orchestrator.operations.models import WORKFLOW_STEPS
from orchestrator.workflows.shape import Workflow

_WORKFLOWS: dict[str, Workflow] = {}


def load() -> dict[str, Workflow]:
    """Every workflow module of this package, by kind; their step names become known to operations."""
    if not _WORKFLOWS:
        found: dict[str, Workflow] = {}
        for module in pkgutil.iter_modules(__path__):
            workflow = getattr(importlib.import_module(f"{__name__}.{module.name}"), "WORKFLOW", None)
            if isinstance(workflow, Workflow):
                if workflow.kind in found:
                    raise RuntimeError(f"two workflows for operation kind '{workflow.kind}'")
                found[workflow.kind] = workflow
        _WORKFLOWS.update(found)
        WORKFLOW_STEPS.update({kind: workflow.step_names for kind, workflow in found.items()})
    return dict(_WORKFLOWS)


def get(kind: str) -> Workflow:
    workflow = load().get(kind)
    if workflow is None:
        raise LookupError(f"operation kind '{kind}' has no workflow")
    return workflow


def register(workflow: Workflow) -> None:
    """Add a workflow that is not a module of this package (tests' own workflows)."""
    load()
    _WORKFLOWS[workflow.kind] = workflow
    WORKFLOW_STEPS[workflow.kind] = workflow.step_names


def unregister(kind: str) -> None:
    _WORKFLOWS.pop(kind, None)
    WORKFLOW_STEPS.pop(kind, None)
