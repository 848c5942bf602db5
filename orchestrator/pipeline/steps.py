"""What each workflow step does. A step reads the service and offering and calls adapters."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.catalog.models import Offering, Plan
from orchestrator.noop import NoopEngine
from orchestrator.ports import Adapters, EventSink, PlaybookRun, ProgressEvent, StackSpec, StepFailed


@dataclass
class StepContext:
    base_stack: StackSpec  # without the site and provider keys
    offering: Offering
    plan: Plan
    adapters: Adapters
    emit: EventSink
    outputs: dict[str, Any]  # stack outputs, filled by `apply`, read by later steps
    tenancy_request: dict[str, str]  # ministry_code, ministry_name, site_name
    label: str = ""  # names artifacts of this operation's runs
    ssh_private_key: str | None = field(default=None, repr=False)
    secret_vars: dict[str, Any] = field(default_factory=dict, repr=False)  # tls, secrets, backup
    operation_parameters: dict[str, Any] = field(default_factory=dict)  # e.g. the playbook of an action
    restic_password: str | None = field(default=None, repr=False)
    files: dict[str, Path] = field(default_factory=dict)  # uploads the run needs, as local files
    # The hosts' pinned SSH host keys as known_hosts text, learned on first use (runner.py).
    known_hosts: Callable[[dict[str, dict[str, Any]]], str | None] | None = None
    _stack: StackSpec | None = None

    @property
    def stack(self) -> StackSpec:
        """The full stack spec. The first step that needs it makes sure the ministry's project
        exists at the site, so a cloud error there is that step's failure."""
        if self._stack is None:
            provider = self.adapters.tenancy.ensure(**self.tenancy_request, on_event=self.emit)
            self._stack = replace(self.base_stack, config={**self.base_stack.config, **provider})
        return self._stack


def plan(ctx: StepContext) -> None:
    summary = ctx.adapters.engine.preview(ctx.stack, ctx.emit)
    counts = ", ".join(f"{n} to {kind}" for kind, n in sorted(summary.changes.items())) or "no changes"
    ctx.emit(ProgressEvent(type="plan.summary", message=f"plan: {counts}", data={"changes": summary.changes}))


def apply(ctx: StepContext) -> None:
    ctx.outputs.update(ctx.adapters.engine.up(ctx.stack, ctx.emit))


def extra_vars(ctx: StepContext) -> dict[str, Any]:
    """The extra-vars contract of playbooks/README.md."""
    config = ctx.base_stack.config
    return {
        "tonle": {
            "ministry": config.get("tonle:ministry"),
            "service_id": config.get("tonle:serviceId"),
            "request_id": config.get("tonle:requestId"),
            "offering": ctx.offering.id,
            "plan": ctx.plan.id,
            "sizes": dict(ctx.plan.sizes),
        },
        "parameters": config.get("tonle:parameters", {}),
        "endpoints": ctx.outputs.get("endpoints") or {},
    }


def backup_vars(ctx: StepContext) -> dict[str, Any]:
    """Where and how the service's backup agent writes: its bucket at the DR site."""
    target = ctx.adapters.backup_targets.ensure(
        ministry_code=ctx.tenancy_request["ministry_code"],
        ministry_name=ctx.tenancy_request["ministry_name"],
        stack_name=ctx.base_stack.name,
        on_event=ctx.emit,
    )
    return {**target, "restic_password": ctx.restic_password, "retention": dict(ctx.offering.backup_retention)}


def _run_playbook(
    ctx: StepContext, playbook: str, more_vars: dict[str, Any] | None = None, files: dict[str, Path] | None = None
) -> None:
    secret_vars = dict(ctx.secret_vars)
    if ctx.offering.backup_tier != "none" and "backup" not in secret_vars:
        secret_vars["backup"] = ctx.secret_vars["backup"] = backup_vars(ctx)
    hosts = ctx.outputs.get("hosts") or {}
    run = PlaybookRun(
        playbook=playbook,
        hosts=hosts,
        extra_vars={**extra_vars(ctx), **(more_vars or {})},
        secret_vars=secret_vars,
        ssh_private_key=ctx.ssh_private_key,
        label=ctx.label,
        files=dict(files or {}),
        known_hosts=ctx.known_hosts(hosts) if ctx.known_hosts and hosts else None,
    )
    result = ctx.adapters.config.run(run, ctx.emit)
    if not result.ok:
        raise StepFailed(f"playbook {playbook} failed: {'; '.join(result.failures) or 'see events'}")


def configure(ctx: StepContext) -> None:
    if ctx.offering.playbooks and not ctx.outputs.get("hosts") and not isinstance(ctx.adapters.engine, NoopEngine):
        raise StepFailed(
            f"the stack outputs no hosts, but offering {ctx.offering.id} has playbooks to run: "
            "check the stack program's `hosts` output"
        )
    for playbook in ctx.offering.playbooks:
        _run_playbook(ctx, playbook)


def run(ctx: StepContext) -> None:
    """A day-2 action: the one playbook the operation names, with its files (the runner hands
    them to the playbook as `action.files.<name>`)."""
    action = ctx.operation_parameters["action"]
    playbook = ctx.offering.day2_playbooks.get(action)
    if playbook is None:
        raise StepFailed(f"offering {ctx.offering.id} has no playbook for '{action}'")
    _run_playbook(ctx, playbook, {"action": {"name": action, "files": {}}}, files=ctx.files)


def verify(ctx: StepContext) -> None:
    parameters = ctx.base_stack.config.get("tonle:parameters", {})
    if not ctx.adapters.health.check(ctx.offering.health_check, ctx.outputs, parameters, ctx.emit):
        raise StepFailed("health check did not pass")


FINAL_BACKUP_PLAYBOOK = "backup_now"


def final_backup(ctx: StepContext) -> None:
    """A last backup into the DR bucket, which outlives the stack for the retention period."""
    if ctx.offering.backup_tier == "none" or not ctx.outputs.get("hosts"):
        return
    _run_playbook(ctx, FINAL_BACKUP_PLAYBOOK)


def destroy(ctx: StepContext) -> None:
    ctx.adapters.engine.destroy(ctx.base_stack.name, ctx.emit)


def release(ctx: StepContext) -> None:
    """The runner releases quota and retires the service when this succeeds. The backup agent's
    credential dies with the server (its bucket stays for the retention period)."""
    if ctx.offering.backup_tier != "none":
        ctx.adapters.backup_targets.retire(
            ministry_code=ctx.tenancy_request["ministry_code"], stack_name=ctx.base_stack.name, on_event=ctx.emit
        )


STEP_HANDLERS: dict[str, Callable[[StepContext], None]] = {
    "plan": plan,
    "apply": apply,
    "configure": configure,
    "verify": verify,
    "final_backup": final_backup,
    "destroy": destroy,
    "release": release,
    "run": run,
}
