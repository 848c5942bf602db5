"""The `Engine` interface through which stack programs are run, and its no-op stand-in."""

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.pipeline.events import EventSink, ProgressEvent


@dataclass(frozen=True)
class StackSpec:
    """One service's stack: which program to run, and the config it reads.

    `program` names a module under `stacks/` whose `program()` is the Pulumi program.
    `config` is the stack's Pulumi configuration with fully qualified keys (`tonle:sizes`,
    `openstack:cloud`, ...; see `stacks/__init__.py` for the contract); values are JSON values.
    Keys in `secret_keys` hold secrets: engines keep them encrypted and out of events.
    """

    name: str
    program: str
    config: dict[str, Any]
    secret_keys: frozenset[str] = frozenset()
    tags: dict[str, str] = field(default_factory=dict)  # ministry, service, request


@dataclass(frozen=True)
class ChangeSummary:
    """Counts per change kind, e.g. {"create": 5, "update": 1, "same": 3}."""

    changes: dict[str, int]


class Engine(Protocol):
    name: str

    def preview(self, stack: StackSpec, on_event: EventSink) -> ChangeSummary: ...

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        """Make the cloud match the program; return the stack outputs."""
        ...

    def destroy(self, stack_name: str, on_event: EventSink) -> None: ...

    def refresh(self, stack_name: str, on_event: EventSink) -> ChangeSummary: ...

    def outputs(self, stack_name: str) -> dict[str, Any]: ...

    def export_state(self, stack_name: str) -> dict[str, Any]: ...

    def cancel(self, stack_name: str) -> None: ...


class NoopEngine:
    """Creates nothing. Lets the pipeline run end to end until the real engines land.

    Every call says so in the operation's events, so nobody mistakes it for a provisioned
    service. `step_seconds` makes each call take time, for demos and crash-recovery tests.
    """

    name = "noop"

    def __init__(self, *, step_seconds: float = 0.0) -> None:
        self.step_seconds = step_seconds

    def _say(self, on_event: EventSink, what: str, stack: str) -> None:
        if self.step_seconds:
            time.sleep(self.step_seconds)
        on_event(
            ProgressEvent(
                type="engine.noop",
                message=f"no-op engine: {what} of stack {stack} does nothing (set a real engine)",
                level="warning",
                data={"stack": stack},
            )
        )

    def preview(self, stack: StackSpec, on_event: EventSink) -> ChangeSummary:
        self._say(on_event, "preview", stack.name)
        return ChangeSummary(changes={})

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        self._say(on_event, "up", stack.name)
        return {}

    def destroy(self, stack_name: str, on_event: EventSink) -> None:
        self._say(on_event, "destroy", stack_name)

    def refresh(self, stack_name: str, on_event: EventSink) -> ChangeSummary:
        self._say(on_event, "refresh", stack_name)
        return ChangeSummary(changes={})

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return {}

    def export_state(self, stack_name: str) -> dict[str, Any]:
        return {"version": 3, "deployment": {"resources": []}}

    def cancel(self, stack_name: str) -> None:
        return None
