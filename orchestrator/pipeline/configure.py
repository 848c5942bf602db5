"""Interfaces for configuring hosts (Ansible) and checking health, with no-op stand-ins for the
no-op engine. Each stand-in says what it skipped."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.pipeline.events import EventSink, ProgressEvent


@dataclass(frozen=True)
class PlaybookRun:
    playbook: str
    hosts: dict[str, dict[str, Any]]  # inventory: host name -> variables (address, groups, ...)
    extra_vars: dict[str, Any] = field(default_factory=dict)
    # Never logged, never left on disk after the run: passwords, the service's SSH key.
    secret_vars: dict[str, Any] = field(default_factory=dict, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    label: str = ""  # names the run's artifacts, e.g. the operation id
    # Local files the run needs (uploads), by a name the orchestrator chose; playbooks find
    # their paths in `action.files.<name>`.
    files: dict[str, Path] = field(default_factory=dict)
    # The hosts' SSH keys (known_hosts lines): when given, ssh accepts no other key.
    # None: host keys are not checked.
    known_hosts: str | None = None


@dataclass(frozen=True)
class PlaybookResult:
    ok: bool
    changed: int = 0
    failures: list[str] = field(default_factory=list)


class ConfigRunner(Protocol):
    name: str

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult: ...


class HealthChecker(Protocol):
    def check(
        self, spec: dict[str, Any], outputs: dict[str, Any], parameters: dict[str, Any], on_event: EventSink
    ) -> bool: ...


class NoopConfigRunner:
    """Runs no playbook. Replaced by the ansible-runner adapter."""

    name = "noop"

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        on_event(
            ProgressEvent(
                type="ansible.noop",
                message=f"no-op runner: playbook {run.playbook} not run on {len(run.hosts)} host(s)",
                level="warning",
                data={"playbook": run.playbook},
            )
        )
        return PlaybookResult(ok=True)


class NoopHealthChecker:
    """Checks nothing. Replaced when offerings get real health checks."""

    def check(
        self, spec: dict[str, Any], outputs: dict[str, Any], parameters: dict[str, Any], on_event: EventSink
    ) -> bool:
        on_event(ProgressEvent(type="health.noop", message="no-op health check: nothing checked", level="warning"))
        return True
