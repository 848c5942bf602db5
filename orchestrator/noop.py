"""Adapters that touch nothing, for running the pipeline with no cloud (`TONLE_ENGINE=noop`).

Each one says in the operation's events what it skipped, so nobody mistakes the result for a
provisioned service.
"""

import time
from typing import Any

from orchestrator.ports import ChangeSummary, EventSink, PlaybookResult, PlaybookRun, ProgressEvent, StackSpec


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


class NoopConfigRunner:
    """Runs no playbook. Replaced by the ansible-runner adapter."""

    name = "noop"

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        on_event(
            ProgressEvent(
                type="ansible.noop",
                message=f"no-op runner: playbook {' + '.join((run.playbook, *run.then))} "
                f"not run on {len(run.hosts)} host(s)",
                level="warning",
                data={"playbook": run.playbook, "then": list(run.then)},
            )
        )
        return PlaybookResult(ok=True)


class NoopHealthChecker:
    """Checks nothing. Replaced when offerings get real health checks."""

    def check(
        self,
        spec: dict[str, Any],
        outputs: dict[str, Any],
        parameters: dict[str, Any],
        secret_vars: dict[str, Any],
        on_event: EventSink,
    ) -> bool:
        on_event(ProgressEvent(type="health.noop", message="no-op health check: nothing checked", level="warning"))
        return True
