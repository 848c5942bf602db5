"""Runs playbooks with ansible-runner, streaming each task result as an event.

Everything a playbook receives is data, never a template: the extra vars (order parameters,
stack outputs, secrets) and the inventory are written by us with every string tagged `!unsafe`
(`unsafe.py`) and passed as `-e @file` / `-i file`; ansible-runner's own `extravars` (which
Ansible would template) is not used. Uploaded files reach the run under names we make.

ansible-runner runs in a child process as an unprivileged account (`privileges.py`,
`child.py`) that cannot read the orchestrator's data directory; its events stream back live.

Several playbooks of one run (`PlaybookRun.then`) are imported in order by a playbook the run
writes into its folder: one ansible-playbook start-up and one SSH connection per host for all of
them. Each task event and failure names the playbook its play is in.

Secrets (the vars file, the service's SSH key) exist on disk only for the length of a run and
are removed in `finally`; a worker starting up removes what a crashed run left
(`remove_leftover_secrets`). Artifacts (events, stdout) are kept per run for later reading.
"""

import contextlib
import fcntl
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import yaml

from orchestrator.ansible import privileges, unsafe
from orchestrator.ansible.events import translate
from orchestrator.ansible.inventory import inventory
from orchestrator.config import get_settings
from orchestrator.ports import EventSink, PlaybookResult, PlaybookRun, ProgressEvent, StepFailed

log = logging.getLogger("tonle.ansible")

ENVIRONMENT = {
    "ANSIBLE_HOST_KEY_CHECKING": "False",  # unless the run pins host keys (PlaybookRun.known_hosts)
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    "ANSIBLE_GATHER_TIMEOUT": "30",
    "ANSIBLE_TIMEOUT": "30",
    "ANSIBLE_SSH_RETRIES": "3",
    "ANSIBLE_PIPELINING": "True",
    # Every host runs Debian 12: no interpreter discovery (a round trip per host and run).
    "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    "ANSIBLE_FORCE_COLOR": "False",
    "ANSIBLE_NOCOLOR": "True",
    "ANSIBLE_STDOUT_CALLBACK": "default",
}


def strategy_environment(strategy: str) -> dict[str, str]:
    """Ansible's settings for the strategy: Mitogen's is a plugin of its package, found where it
    is installed. A task then costs a message to a Python already running on the host instead of
    an SSH command, an interpreter start and a module upload (most of a configure step's time)."""
    if strategy == "linear":
        return {"ANSIBLE_STRATEGY": "linear"}
    import ansible_mitogen

    plugins = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": f"{strategy}_linear"}


VARS_FILE = "env/tonle-vars.yml"
INVENTORY_FILE = "inventory/hosts.yml"
KNOWN_HOSTS_FILE = "env/known_hosts"
PLAYBOOKS_FILE = "playbooks.yml"  # a run of several playbooks: imports them in order
FILES_DIR = "files"
LOCK_FILE = ".running"
# Files of a run that hold secrets: ours, and what ansible-runner writes when given them.
SECRET_FILES = ("env/extravars", "env/ssh_key", "env/passwords", VARS_FILE)
FILE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class AnsibleRunner:
    """The `ConfigRunner` the pipeline uses: ansible-runner over SSH."""

    name = "ansible"

    def __init__(
        self,
        *,
        playbooks_dir: Path,
        runs_dir: Path,
        timeout_seconds: int = 3600,
        user: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        settings = get_settings()
        self.playbooks_dir = playbooks_dir.resolve()
        self.timeout_seconds = timeout_seconds
        self.data_dir = data_dir or settings.resolved_data_dir
        self.account = privileges.account(user or settings.ansible_user)
        # The unprivileged account cannot enter the data directory: its runs live in its home.
        self.runs_dir = self.account.home / "ansible-runs" if self.account.dropped else runs_dir
        self._running: dict[str, list[subprocess.Popen[str]]] = {}
        self._lock = threading.Lock()

    def playbook_path(self, playbook: str) -> Path:
        path = self.playbooks_dir / f"{playbook}.yml"
        if not FILE_NAME.fullmatch(playbook) or not path.is_file():
            log.error("playbook %r not found: no %s", playbook, path)
            raise StepFailed(f"playbook '{playbook}' is not installed on the orchestrator")
        return path

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        names = [run.playbook, *run.then]
        paths = [self.playbook_path(name) for name in names]
        playbook_of_play = _playbooks_by_play(names, paths)
        if self.account.dropped:
            privileges.protect_data_dir(self.data_dir)
        else:
            on_event(
                ProgressEvent(
                    type="ansible.privileges",
                    message=f"playbook {' + '.join(names)} runs as {self.account.name}: the worker is not root, "
                    "so privileges were not dropped to an unprivileged account",
                    level="warning",
                    data={"user": self.account.name},
                )
            )
        try:
            hosts = inventory(run.hosts)
        except ValueError as exc:
            raise StepFailed(str(exc)) from exc
        self.runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._own(self.runs_dir)
        ident = f"{run.label or 'run'}-{'+'.join(names)}-{uuid.uuid4().hex[:8]}"
        private_dir = self.runs_dir / ident
        private_dir.mkdir(mode=0o700)
        self._own(private_dir)
        failures: list[str] = []

        def handle(event: dict[str, Any]) -> None:
            progress = translate(event)
            if progress is None:
                return
            playbook = playbook_of_play.get(str((event.get("event_data") or {}).get("play")), names[0])
            message = self._scrub(progress.message, private_dir)
            if run.then and progress.type == "ansible.play":
                message = f"{message} (playbook {playbook})"
            progress = replace(progress, message=message, data={**progress.data, "playbook": playbook})
            if progress.data.get("outcome") in ("failed", "unreachable"):
                where = f" (playbook {playbook})" if run.then else ""
                failures.append(f"{progress.data.get('host')}: {progress.data.get('task')}{where}")
            on_event(progress)

        log.info(
            "running playbook %s (%s) on %d host(s) as %s, artifacts in %s",
            " + ".join(names),
            run.label,
            len(run.hosts),
            self.account.name,
            private_dir,
        )
        with _held(private_dir / LOCK_FILE):
            # SSH connections of this run only: a master connection another run left open would
            # carry this run past its own host key check (ControlPersist).
            control_dir = Path(tempfile.mkdtemp(prefix="tonle-ssh-"))
            self._own(control_dir)
            try:
                spec = self._prepare(run, self._entry(paths, private_dir), private_dir, hosts)
                spec["envvars"]["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_dir)
                result = self._spawn(run.label, spec, handle)
            finally:
                _remove_secrets(private_dir)
                shutil.rmtree(control_dir, ignore_errors=True)
        stats = result.get("stats") or {}
        changed = sum((stats.get("changed") or {}).values())
        ok = result.get("status") == "successful" and result.get("rc") == 0
        if not ok and not failures:
            # No task failed: the playbook itself is broken (syntax, missing role). Say how.
            tail = self._scrub(_stdout_tail(private_dir), private_dir)
            log.error("playbook %s (%s) ended %s; artifacts in %s", " + ".join(names), run.label, result, private_dir)
            failures.append(f"ansible-playbook ended {result.get('status')} (rc {result.get('rc')}): {tail}")
        return PlaybookResult(ok=ok, changed=changed, failures=failures)

    def cancel(self, label: str) -> None:
        with self._lock:
            children = list(self._running.get(label, []))
        for child in children:
            try:
                assert child.stdin is not None
                child.stdin.write("cancel\n")
                child.stdin.flush()
            except (OSError, ValueError):
                pass

    def _entry(self, paths: Sequence[Path], private_dir: Path) -> Path:
        """The playbook ansible-playbook starts: the one asked for, or one importing them all."""
        if len(paths) == 1:
            return paths[0]
        entry = private_dir / PLAYBOOKS_FILE
        entry.write_text(yaml.safe_dump([{"ansible.builtin.import_playbook": str(path)} for path in paths]))
        self._own(entry)
        return entry

    def _own(self, path: Path) -> None:
        if self.account.owner is not None:
            os.chown(path, *self.account.owner)

    def _dir(self, path: Path) -> Path:
        path.mkdir(mode=0o700, exist_ok=True)
        self._own(path)
        return path

    def _prepare(self, run: PlaybookRun, playbook: Path, private_dir: Path, hosts: dict[str, Any]) -> dict[str, Any]:
        """Write the run's inputs into its folder, as the account it runs as, and say how to run it."""
        owner = self.account.owner
        env_dir = self._dir(private_dir / "env")
        inventory_file = unsafe.write(
            self._dir(private_dir / "inventory") / Path(INVENTORY_FILE).name, hosts, owner=owner
        )
        variables: dict[str, Any] = {**run.extra_vars, **run.secret_vars}
        if run.files:
            variables["action"] = {**(variables.get("action") or {}), "files": self._stage(run.files, private_dir)}
        vars_file = unsafe.write(private_dir / VARS_FILE, variables, owner=owner)
        envvars = {**ENVIRONMENT, **strategy_environment(get_settings().ansible_strategy)}
        if run.known_hosts is not None:
            known_hosts = env_dir / Path(KNOWN_HOSTS_FILE).name
            known_hosts.write_text(run.known_hosts if run.known_hosts.endswith("\n") else run.known_hosts + "\n")
            self._own(known_hosts)
            envvars["ANSIBLE_HOST_KEY_CHECKING"] = "True"
            envvars["ANSIBLE_SSH_COMMON_ARGS"] = shlex.join(
                ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"]
            )
        return {
            "private_data_dir": str(private_dir),
            "project_dir": str(self.playbooks_dir),
            "playbook": str(playbook),
            "inventory": str(inventory_file),
            "cmdline": shlex.join(["-e", f"@{vars_file}"]),
            "envvars": envvars,
            "ssh_key": run.ssh_private_key,
            "timeout": self.timeout_seconds,
        }

    def _stage(self, files: dict[str, Path], private_dir: Path) -> dict[str, str]:
        """Copies of the run's files under names we make, readable by the account it runs as."""
        folder = self._dir(private_dir / FILES_DIR)
        staged: dict[str, str] = {}
        for name, source in sorted(files.items()):
            if not FILE_NAME.fullmatch(name):
                raise StepFailed(f"a file of this action has a name the orchestrator does not use: {name[:40]!r}")
            target = folder / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            self._own(target)
            staged[name] = str(target)
        return staged

    def _spawn(self, label: str, spec: dict[str, Any], handle: Any) -> dict[str, Any]:
        python = privileges.child_python(self.account)
        command = privileges.child_command(self.account, python)
        result: dict[str, Any] = {}
        with tempfile.TemporaryFile("w+") as errors:
            child = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=privileges.child_environment(self.account),
                cwd=spec["private_data_dir"],
                text=True,
                bufsize=1,
            )
            with self._lock:
                self._running.setdefault(label, []).append(child)
            # The child's own timeout ends ansible-playbook; this one ends a child that hangs.
            watchdog = threading.Timer(self.timeout_seconds + 120, child.kill)
            watchdog.start()
            try:
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write(json.dumps(spec) + "\n")
                child.stdin.flush()
                result = _read_messages(child.stdout, handle)
                child.wait()
            finally:
                watchdog.cancel()
                if child.poll() is None:
                    child.kill()
                    child.wait()
                with self._lock:
                    self._running[label].remove(child)
                    if not self._running[label]:
                        del self._running[label]
                if child.stdin is not None:
                    with contextlib.suppress(OSError):
                        child.stdin.close()
            if not result:
                errors.seek(0)
                log.error("the Ansible child (%s) ended rc %s: %s", label, child.returncode, errors.read()[-4000:])
                result = {"status": "error", "rc": child.returncode}
        return result

    def _scrub(self, text: str, private_dir: Path) -> str:
        """Ministries see Ansible's messages, never where the orchestrator keeps things."""
        for path, shown in (
            (private_dir, "<run>"),
            (self.runs_dir, "<runs>"),
            (self.playbooks_dir, "<playbooks>"),
            (self.data_dir, "<data>"),
        ):
            text = text.replace(str(path), shown)
        return text


def _playbooks_by_play(names: Sequence[str], paths: Sequence[Path]) -> dict[str, str]:
    """Which playbook each play (by its name, as events give it) is in."""
    found: dict[str, str] = {}
    for name, path in zip(names, paths, strict=True):
        try:
            plays = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue  # ansible-playbook reports the syntax error itself
        for play in plays if isinstance(plays, list) else []:
            if isinstance(play, dict) and isinstance(play.get("name"), str):
                found.setdefault(play["name"], name)
    return found


def _read_messages(stream: IO[str], handle: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for line in stream:
        try:
            message = json.loads(line)
        except ValueError:
            log.warning("the Ansible child wrote a line that is not a message: %.200s", line)
            continue
        if "event" in message:
            handle(message["event"])
        elif "status" in message:
            log.info("playbook status: %s", message["status"])
        elif "result" in message:
            result = message["result"]
    return result


class _held:
    """An exclusive lock on a run's folder while it runs, so a starting worker leaves it alone."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _stdout_tail(private_dir: Path, lines: int = 6) -> str:
    for stdout in (private_dir / "artifacts").glob("*/stdout"):
        kept = [line.strip() for line in stdout.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(kept[-lines:])
    return "no output"


def _remove_secrets(private_dir: Path) -> None:
    for name in SECRET_FILES:
        (private_dir / name).unlink(missing_ok=True)
    # The uploads the run was given: ministries' data, needed only during the run.
    shutil.rmtree(private_dir / FILES_DIR, ignore_errors=True)
    # ansible-runner copies the inventory and env into the artifact dir too.
    for artifact in (private_dir / "artifacts").glob("*/env"):
        shutil.rmtree(artifact, ignore_errors=True)


def remove_leftover_secrets(runs_dirs: Iterable[Path]) -> int:
    """Remove the secrets runs left behind when their worker died; return how many runs had some.

    A run still going (in another worker on this machine) holds its lock and is left alone.
    """
    cleaned = 0
    for runs_dir in runs_dirs:
        if not runs_dir.is_dir():
            continue
        for private_dir in runs_dir.iterdir():
            if not private_dir.is_dir() or private_dir.is_symlink():
                continue
            leftovers = [private_dir / name for name in SECRET_FILES if (private_dir / name).exists()]
            leftovers += list((private_dir / "artifacts").glob("*/env"))
            leftovers += [p for p in [private_dir / FILES_DIR] if p.exists()]
            if not leftovers or _is_running(private_dir):
                continue
            _remove_secrets(private_dir)
            log.warning("removed secrets left by a crashed Ansible run in %s", private_dir)
            cleaned += 1
    return cleaned


def _is_running(private_dir: Path) -> bool:
    lock = private_dir / LOCK_FILE
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def runs_dirs() -> list[Path]:
    """Every folder this installation's runs may be in: the data directory's, and the
    unprivileged account's home when the worker is root."""
    settings = get_settings()
    found = [settings.resolved_data_dir / "ansible-runs"]
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            found.append(Path(pwd.getpwnam(settings.ansible_user).pw_dir) / "ansible-runs")
    return found


def clean_up_at_start() -> None:
    """What a worker does before taking jobs: no secret of a crashed run stays on disk, and
    the data directory is closed to other users."""
    removed = remove_leftover_secrets(runs_dirs())
    if removed:
        log.warning("removed secrets left by %d crashed Ansible run(s)", removed)
    if os.geteuid() == 0:
        privileges.protect_data_dir(get_settings().resolved_data_dir)
