"""The one shape every workflow has: ordered steps, what the service becomes, and the signals it
may wait for. A workflow is data; `runner.py` is the only code that walks it."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from orchestrator.operations.models import Operation
from orchestrator.policy import Action
from orchestrator.services.models import Service, ServiceStatus

if TYPE_CHECKING:
    from orchestrator.workflows.context import StepContext

StepHandler = Callable[["StepContext"], None]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepHandler
    # Runs even when an earlier step failed (cleanup); its own failure is logged, not raised.
    always: bool = False


@dataclass(frozen=True)
class Finish:
    """What a workflow's finishing hook sees, inside the transaction that ends the operation."""

    session: Session
    operation: Operation
    service: Service
    outputs: Mapping[str, Any]


FinishHook = Callable[[Finish], None]
# A day-2 action's JSON body, checked (raising InvalidInput) and turned into the operation's parameters.
ParameterCheck = Callable[[Mapping[str, Any]], dict[str, Any]]
# The same parameters checked against the service they are for (its locked row, in the caller's
# session): what only the service can tell, such as a device name it already has.
ServiceCheck = Callable[[Session, Service, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Workflow:
    """An operation kind's business process.

    `service_while_running` / `_on_success` / `_on_failure`: the service's status while the
    operation runs and when it ends; None leaves the service as it is (a day-2 playbook that fails
    does not break a running service). `signals`: what a step may wait for, and the permission a
    caller needs to send it (`POST /v1/operations/{id}/signals/{name}`).
    """

    kind: str
    steps: tuple[Step, ...]
    summary: str = ""
    service_while_running: ServiceStatus | None = None
    service_on_success: ServiceStatus | None = None
    service_on_failure: ServiceStatus | None = None
    on_success: FinishHook | None = None
    signals: Mapping[str, Action] = field(default_factory=dict)
    # Started by `POST /v1/services/{id}/actions/<kind>` on an active service; the policy's
    # action for that name decides who may.
    day2_action: bool = False
    # What such an action takes in its JSON body; None: it takes none.
    check_parameters: ParameterCheck | None = None
    check_for_service: ServiceCheck | None = None
    # False: a failed run is not resumed (its cleanup has run and its report is signed); the
    # caller asks for a new one.
    retryable: bool = True

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"workflow {self.kind}: step names must be unique and there must be some: {names}")

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    def step(self, name: str) -> Step:
        found = next((step for step in self.steps if step.name == name), None)
        if found is None:
            raise KeyError(f"workflow {self.kind} has no step '{name}'")
        return found


class WaitingFor(Exception):
    """A step needs an outside signal (a technician, an operator) before it can go on.

    Raised by `StepContext.wait_for`; the runner parks the operation in `waiting` and frees the
    worker. When the signal arrives through the API the operation is queued again and the step
    runs anew, this time finding the signal's payload.
    """

    def __init__(self, signal: str, message: str) -> None:
        super().__init__(message)
        self.signal = signal
        self.message = message
