"""Runs playbooks with ansible-runner, streaming each task result as an event.

Secrets (extra vars marked secret, the service's SSH key) exist on disk only for the length of
a run: the key goes through ansible-runner's FIFO to ssh-agent, the secret vars file is
removed when the run ends. Artifacts (events, stdout) are kept per run for later reading.
"""

import logging
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import ansible_runner

from orchestrator.ansible.events import translate
from orchestrator.ansible.inventory import inventory
from orchestrator.pipeline.configure import PlaybookResult, PlaybookRun
from orchestrator.pipeline.events import EventSink, StepFailed

log = logging.getLogger("tonle.ansible")

ENVIRONMENT = {
    "ANSIBLE_HOST_KEY_CHECKING": "False",  # fresh instances; their host keys are new each time
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    "ANSIBLE_GATHER_TIMEOUT": "30",
    "ANSIBLE_TIMEOUT": "30",
    "ANSIBLE_SSH_RETRIES": "3",
    "ANSIBLE_PIPELINING": "True",
    "ANSIBLE_FORCE_COLOR": "False",
    "ANSIBLE_NOCOLOR": "True",
    "ANSIBLE_STDOUT_CALLBACK": "default",
}


class AnsibleRunner:
    """The `ConfigRunner` the pipeline uses: ansible-runner over SSH."""

    name = "ansible"

    def __init__(self, *, playbooks_dir: Path, runs_dir: Path, timeout_seconds: int = 3600) -> None:
        self.playbooks_dir = playbooks_dir
        self.runs_dir = runs_dir
        self.timeout_seconds = timeout_seconds
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def playbook_path(self, playbook: str) -> Path:
        path = self.playbooks_dir / f"{playbook}.yml"
        if not path.is_file():
            raise StepFailed(f"playbook '{playbook}' not found: no {path}")
        return path

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        playbook = self.playbook_path(run.playbook)
        ident = f"{run.label or 'run'}-{run.playbook}-{uuid.uuid4().hex[:8]}"
        private_dir = self.runs_dir / ident
        private_dir.mkdir(parents=True, mode=0o700)
        failures: list[str] = []

        def handle(event: dict[str, Any]) -> bool:
            progress = translate(event)
            if progress is not None:
                if progress.data.get("outcome") in ("failed", "unreachable"):
                    failures.append(f"{progress.data.get('host')}: {progress.data.get('task')}")
                on_event(progress)
            return True

        def status(data: dict[str, Any], runner_config: Any) -> None:
            # The status payload carries the whole process environment: log the status only.
            log.info("playbook %s: %s", run.playbook, data.get("status"))

        log.info("running playbook %s on %d host(s), artifacts in %s", run.playbook, len(run.hosts), private_dir)
        try:
            result = ansible_runner.run(
                private_data_dir=str(private_dir),
                project_dir=str(self.playbooks_dir),
                playbook=str(playbook),
                inventory=inventory(run.hosts),
                extravars={**run.extra_vars, **run.secret_vars},
                envvars=_environment(),
                ssh_key=run.ssh_private_key,
                event_handler=handle,
                status_handler=status,
                cancel_callback=lambda: ident in self._cancelled,
                timeout=self.timeout_seconds,
                quiet=True,
                omit_event_data=False,
            )
        finally:
            _remove_secrets(private_dir)
        stats = result.stats or {}
        changed = sum((stats.get("changed") or {}).values())
        ok = result.status == "successful" and result.rc == 0
        if not ok and not failures:
            # No task failed: the playbook itself is broken (syntax, missing role). Say how.
            tail = _stdout_tail(private_dir)
            failures.append(
                f"ansible-playbook ended {result.status} (rc {result.rc}): {tail} [artifacts: {private_dir}]"
            )
        return PlaybookResult(ok=ok, changed=changed, failures=failures)

    def cancel(self, label: str) -> None:
        with self._lock:
            self._cancelled.add(label)


def _environment() -> dict[str, str]:
    # ansible-playbook lives beside this interpreter (the project's venv), which may not be on PATH.
    bin_dir = str(Path(sys.executable).parent)
    return {**ENVIRONMENT, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")])}


def _stdout_tail(private_dir: Path, lines: int = 6) -> str:
    for stdout in (private_dir / "artifacts").glob("*/stdout"):
        kept = [line.strip() for line in stdout.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(kept[-lines:])
    return "no output"


def _remove_secrets(private_dir: Path) -> None:
    env = private_dir / "env"
    for name in ("extravars", "ssh_key", "passwords"):
        (env / name).unlink(missing_ok=True)
    # ansible-runner copies the inventory and env into the artifact dir too.
    for artifact in (private_dir / "artifacts").glob("*/env"):
        shutil.rmtree(artifact, ignore_errors=True)
