"""The Pulumi Automation API engine, for sites where the `pulumi` CLI and its OpenStack plugin
are installed (a production data centre). Inline programs, a self-managed backend, passphrase
secrets. Not used where no CLI exists (development, CI): the embedded engine runs there.
"""

import hashlib
import importlib
import json
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.ports import ChangeSummary, EventSink, ProgressEvent, StackSpec, StepFailed

log = logging.getLogger(__name__)

PROJECT = "tonle"


def cli_available() -> bool:
    return shutil.which("pulumi") is not None


def config_map(spec: StackSpec) -> dict[str, dict[str, Any]]:
    """The stack's config as `pulumi config set-all` wants it: strings, secrets flagged."""
    return {
        key: {"value": value if isinstance(value, str) else json.dumps(value), "secret": key in spec.secret_keys}
        for key, value in spec.config.items()
    }


def load_program(module: str) -> Callable[[], None]:
    program: Callable[[], None] = importlib.import_module(f"stacks.{module}").program
    return program


def to_progress(event: Any) -> ProgressEvent | None:
    """Translate one Automation API EngineEvent into the events every engine emits."""
    if event.resource_pre_event is not None:
        meta = event.resource_pre_event.metadata
        return ProgressEvent(
            type="resource.pre",
            message=f"{_op(meta.op)} {meta.type} {meta.urn.rsplit('::', 1)[-1]}",
            data={"op": _op(meta.op), "urn": meta.urn, "type": meta.type},
        )
    if event.res_outputs_event is not None:
        meta = event.res_outputs_event.metadata
        return ProgressEvent(
            type="resource.outcome",
            message=f"{_op(meta.op)} {meta.type} {meta.urn.rsplit('::', 1)[-1]} done",
            data={"op": _op(meta.op), "urn": meta.urn, "type": meta.type},
        )
    if event.res_op_failed_event is not None:
        meta = event.res_op_failed_event.metadata
        return ProgressEvent(
            type="resource.failed",
            message=f"{_op(meta.op)} {meta.type} {meta.urn.rsplit('::', 1)[-1]} failed",
            level="error",
            data={"op": _op(meta.op), "urn": meta.urn, "type": meta.type},
        )
    if event.diagnostic_event is not None:
        diag = event.diagnostic_event
        level = {"error": "error", "warning": "warning"}.get(diag.severity, "info")
        return ProgressEvent(type="diagnostic", message=diag.message.strip(), level=level, data={"urn": diag.urn})
    if event.summary_event is not None:
        changes = {_op(op): count for op, count in (event.summary_event.resource_changes or {}).items()}
        return ProgressEvent(type="summary", message=f"changes: {changes}", data={"changes": changes})
    return None


def _op(op: Any) -> str:
    return str(getattr(op, "value", op))


class AutomationEngine:
    """Runs stack programs through `pulumi.automation` (needs the `pulumi` CLI)."""

    name = "automation"

    def __init__(self, *, backend_url: str, passphrase: str, work_dir: Path) -> None:
        self.backend_url = backend_url
        self.passphrase = passphrase
        self.work_dir = work_dir
        self._stacks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def workspace_options(self, program: Callable[[], None] | None = None) -> Any:
        from pulumi import automation as auto

        self.work_dir.mkdir(parents=True, exist_ok=True)
        return auto.LocalWorkspaceOptions(
            work_dir=str(self.work_dir),
            program=program,
            secrets_provider="passphrase",
            env_vars={"PULUMI_CONFIG_PASSPHRASE": self.passphrase, "PULUMI_SKIP_UPDATE_CHECK": "true"},
            project_settings=auto.ProjectSettings(
                name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=self.backend_url)
            ),
        )

    def _stack(self, spec: StackSpec) -> Any:
        from pulumi import automation as auto

        stack = auto.create_or_select_stack(
            stack_name=spec.name,
            project_name=PROJECT,
            program=load_program(spec.program),
            opts=self.workspace_options(),
        )
        stack.set_all_config({k: auto.ConfigValue(**v) for k, v in config_map(spec).items()})
        with self._lock:
            self._stacks[spec.name] = stack
        return stack

    def _existing(self, stack_name: str) -> Any:
        from pulumi import automation as auto

        return auto.select_stack(
            stack_name=stack_name, project_name=PROJECT, program=lambda: None, opts=self.workspace_options()
        )

    @staticmethod
    def _forward(on_event: EventSink) -> Callable[[Any], None]:
        def forward(event: Any) -> None:
            progress = to_progress(event)
            if progress is not None:
                on_event(progress)

        return forward

    def preview(self, stack: StackSpec, on_event: EventSink) -> ChangeSummary:
        result = _guard(lambda: self._stack(stack).preview(on_event=self._forward(on_event)))
        return ChangeSummary(changes={_op(op): n for op, n in (result.change_summary or {}).items()})

    def up(self, stack: StackSpec, on_event: EventSink) -> dict[str, Any]:
        result = _guard(lambda: self._stack(stack).up(on_event=self._forward(on_event)))
        return {key: output.value for key, output in result.outputs.items()}

    def destroy(self, stack_name: str, on_event: EventSink) -> None:
        _guard(lambda: self._existing(stack_name).destroy(on_event=self._forward(on_event)))

    def refresh(self, stack_name: str, on_event: EventSink) -> ChangeSummary:
        result = _guard(lambda: self._existing(stack_name).refresh(on_event=self._forward(on_event)))
        return ChangeSummary(changes={_op(op): n for op, n in (result.summary.resource_changes or {}).items()})

    def outputs(self, stack_name: str) -> dict[str, Any]:
        try:
            stack = self._existing(stack_name)
        except Exception:  # noqa: BLE001 - a stack never brought up has no outputs
            return {}
        return {key: output.value for key, output in stack.outputs().items()}

    def export_state(self, stack_name: str) -> dict[str, Any]:
        deployment = self._existing(stack_name).export_stack()
        return {"version": deployment.version, "deployment": deployment.deployment}

    def cancel(self, stack_name: str) -> None:
        with self._lock:
            stack = self._stacks.get(stack_name)
        if stack is not None:
            stack.cancel()


def _guard(call: Callable[[], Any]) -> Any:
    """Map the Automation API's errors: a failed update is a step failure, not a crash."""
    from pulumi.automation import errors

    try:
        return call()
    except errors.ConcurrentUpdateError as exc:
        raise StepFailed(f"another update holds the stack: {exc}") from exc
    except errors.CommandError as exc:
        raise StepFailed(_last_lines(str(exc))) from exc


def _last_lines(text: str, count: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


def passphrase_from_key(key: bytes) -> str:
    """A stable stack passphrase derived from the installation's secrets key."""
    return hashlib.sha256(b"tonle-pulumi-passphrase:" + key).hexdigest()
