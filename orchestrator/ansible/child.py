"""The process that runs one playbook, as the unprivileged Ansible account (see privileges.py).

`python -m orchestrator.ansible.child`. Reads the run's spec as one JSON line on stdin (the SSH
key travels here, never on a command line or in the environment); a later line `cancel` stops
the run. Writes JSON lines on stdout: `{"event": ...}` for each ansible-runner event (only the
fields the orchestrator reads), `{"status": ...}`, and last `{"result": {status, rc, stats}}`.
Imports nothing of the orchestrator: it runs with the account's rights and nothing else.
"""

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

EVENT_FIELDS = ("play", "task", "host", "role", "ignore_errors", "ok", "changed", "failures", "dark", "skipped")
RESULT_FIELDS = ("changed", "censored", "msg", "reason", "stderr")


def slim(event: dict[str, Any]) -> dict[str, Any]:
    """The parts of an event the orchestrator reads (events.translate)."""
    data = event.get("event_data") or {}
    kept: dict[str, Any] = {key: data[key] for key in EVENT_FIELDS if key in data}
    result = data.get("res")
    if isinstance(result, dict):
        kept["res"] = {key: result[key] for key in RESULT_FIELDS if key in result}
    return {"event": event.get("event"), "event_data": kept}


def shim(bin_dir: Path, python: str) -> None:
    """`ansible-playbook` on PATH, run by an interpreter this account can execute (the one in
    the installation's scripts may live where it cannot go)."""
    bin_dir.mkdir(mode=0o700, exist_ok=True)
    script = bin_dir / "ansible-playbook"
    script.write_text(f'#!/bin/sh\nexec {json.dumps(python)} -s -m ansible.cli.playbook "$@"\n')
    script.chmod(0o700)


def main(stdin: TextIO = sys.stdin) -> int:
    # ansible-runner must not print on our stdout: it carries the protocol.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(message, default=str) + "\n")

    spec = json.loads(stdin.readline())
    cancelled = threading.Event()

    def listen() -> None:
        for line in stdin:
            if line.strip() == "cancel":
                cancelled.set()

    threading.Thread(target=listen, daemon=True).start()
    os.umask(0o077)
    private_dir = Path(spec["private_data_dir"])
    shim(private_dir / "bin", sys.executable)
    os.environ["PATH"] = f"{private_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"

    import ansible_runner

    def on_event(event: dict[str, Any]) -> bool:
        send({"event": slim(event)})
        return True

    def on_status(data: dict[str, Any], runner_config: Any) -> None:
        # The full status payload carries the environment: only the status leaves this process.
        send({"status": data.get("status")})

    result = ansible_runner.run(
        private_data_dir=str(private_dir),
        project_dir=spec["project_dir"],
        playbook=spec["playbook"],
        inventory=spec["inventory"],
        cmdline=spec["cmdline"],
        envvars=spec["envvars"],
        ssh_key=spec.get("ssh_key"),
        event_handler=on_event,
        status_handler=on_status,
        cancel_callback=cancelled.is_set,
        timeout=spec["timeout"],
        quiet=True,
        omit_event_data=False,
    )
    send({"result": {"status": result.status, "rc": result.rc, "stats": result.stats or {}}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
