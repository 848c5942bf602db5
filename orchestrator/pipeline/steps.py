"""What each workflow step does. A step reads the service and offering and calls adapters."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.catalog.models import Offering, Plan
from orchestrator.pipeline.adapters import Adapters
from orchestrator.pipeline.configure import PlaybookRun
from orchestrator.pipeline.engine import StackSpec
from orchestrator.pipeline.events import EventSink, ProgressEvent, StepFailed


@dataclass
class StepContext:
    stack: StackSpec
    offering: Offering
    plan: Plan
    adapters: Adapters
    emit: EventSink
    outputs: dict[str, Any]  # stack outputs, filled by `apply`, read by later steps


def plan(ctx: StepContext) -> None:
    summary = ctx.adapters.engine.preview(ctx.stack, ctx.emit)
    counts = ", ".join(f"{n} to {kind}" for kind, n in sorted(summary.changes.items())) or "no changes"
    ctx.emit(ProgressEvent(type="plan.summary", message=f"plan: {counts}", data={"changes": summary.changes}))


def apply(ctx: StepContext) -> None:
    ctx.outputs.update(ctx.adapters.engine.up(ctx.stack, ctx.emit))


def configure(ctx: StepContext) -> None:
    hosts = ctx.outputs.get("hosts") or {}
    extra_vars = {"service": ctx.stack.tags, "parameters": ctx.stack.config.get("parameters", {})}
    for playbook in ctx.offering.playbooks:
        result = ctx.adapters.config.run(PlaybookRun(playbook=playbook, hosts=hosts, extra_vars=extra_vars), ctx.emit)
        if not result.ok:
            raise StepFailed(f"playbook {playbook} failed: {'; '.join(result.failures) or 'see events'}")


def verify(ctx: StepContext) -> None:
    if not ctx.adapters.health.check(ctx.offering.health_check, ctx.outputs, ctx.emit):
        raise StepFailed("health check did not pass")


def final_backup(ctx: StepContext) -> None:
    if ctx.offering.backup_tier == "none":
        return
    ctx.adapters.backup.final_backup(ctx.stack.name, ctx.outputs, ctx.emit)


def destroy(ctx: StepContext) -> None:
    ctx.adapters.engine.destroy(ctx.stack.name, ctx.emit)


def release(ctx: StepContext) -> None:
    """Bookkeeping only: the runner releases quota and retires the service when this succeeds."""


STEP_HANDLERS: dict[str, Callable[[StepContext], None]] = {
    "plan": plan,
    "apply": apply,
    "configure": configure,
    "verify": verify,
    "final_backup": final_backup,
    "destroy": destroy,
    "release": release,
}
