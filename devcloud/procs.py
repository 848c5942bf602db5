"""Start, find and stop the cloud's processes.

Each process runs in its own session (so `down` can signal its whole group, children
included) with output appended to `logs/<name>.log`. A pid file records the pid and the
kernel's start time of that pid, so a recycled pid is never mistaken for ours.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devcloud.context import Context


def _pid_file(ctx: Context, name: str) -> Path:
    return ctx.run_dir / f"{name}.pid"


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is as good as dead
        return None
    return fields[19]


def read_pid(ctx: Context, name: str) -> int | None:
    """The pid of running process `name`, or None."""
    try:
        pid_text, started = _pid_file(ctx, name).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _start_time(pid) == started else None


def _raw_pid(ctx: Context, name: str) -> int | None:
    try:
        return int(_pid_file(ctx, name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(ctx: Context, name: str) -> bool:
    return read_pid(ctx, name) is not None


def names(ctx: Context) -> list[str]:
    """Every process that has a pid file, running or not."""
    return sorted(p.stem for p in ctx.run_dir.glob("*.pid"))


def start(
    ctx: Context,
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    existing = read_pid(ctx, name)
    if existing is not None:
        return existing
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.logs_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    # The project's venv must not leak into the cloud's interpreters.
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        full_env.pop(var, None)
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    with open(ctx.log_path(name), "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    started = _start_time(proc.pid)
    _pid_file(ctx, name).write_text(f"{proc.pid} {started}\n")
    return proc.pid


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    """True while any process of group `pgid` (not only its leader) still runs."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def stop(ctx: Context, name: str, timeout: float = 10.0) -> None:
    stop_many(ctx, [name], timeout=timeout)


def stop_many(ctx: Context, names: Sequence[str], timeout: float = 10.0) -> None:
    """SIGTERM every named process group at once, SIGKILL what is left after `timeout` s.

    Nova and Cinder daemons may ignore SIGTERM (once RabbitMQ is gone, or while their
    thread pools wind down), hence the SIGKILL; signalling all at once bounds `down`.
    """
    groups: dict[str, int] = {}
    for name in names:
        pid = read_pid(ctx, name) or _raw_pid(ctx, name)
        # A leader may have died leaving children in its group; the kernel never hands out
        # a pid equal to a live group's id, so a live group with our recorded id is ours.
        if pid is not None and _group_alive(pid):
            groups[name] = pid
            _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_group_alive(g) for g in groups.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in groups.values():
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
    while any(_group_alive(g) for g in groups.values()) and time.monotonic() < deadline + 5:
        time.sleep(0.1)
    for name in names:
        _pid_file(ctx, name).unlink(missing_ok=True)


def _cmdline(pid_dir: Path) -> list[str]:
    try:
        return (pid_dir / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


#: Programs that, given our data directory as an argument, are part of this cloud (never,
#: say, a `tail -f` of one of its logs).
DAEMON_PROGRAMS = ("mariadbd", "beam.smp", "named", "systemd-nspawn", "apt-cacher-ng", "python")


def _environ(pid_dir: Path) -> list[str]:
    try:
        return (pid_dir / "environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def strays(ctx: Context, markers: Sequence[str] = ()) -> list[tuple[int, str]]:
    """Processes of this cloud, to be called once all should have stopped: programs from the
    data directory (the venvs, by command line or by binary), daemons given it as an
    argument, and any command line containing one of `markers`. Never another data
    directory's: the ports are shared, the processes are not."""
    prefix = f"{ctx.data_dir}/"
    found = []
    for pid_dir in Path("/proc").glob("[0-9]*"):
        argv = _cmdline(pid_dir)
        if not argv or int(pid_dir.name) == os.getpid():
            continue
        line = " ".join(argv)
        program = Path(argv[0]).name
        try:
            # A program that renamed its process may still run a binary from our data directory.
            exe = os.readlink(pid_dir / "exe")
        except OSError:
            exe = ""
        ours = (
            argv[0].startswith(prefix)
            or exe.startswith(prefix)
            or (program.startswith(DAEMON_PROGRAMS) and prefix in line)
        )
        if not ours and program == "epmd":
            # An `epmd -daemon` started by Erlang carries our port only in its environment.
            line += " " + " ".join(_environ(pid_dir))
        if ours or any(marker in line for marker in markers):
            found.append((int(pid_dir.name), line[:120]))
    return found


def kill_strays(ctx: Context, markers: Sequence[str] = ()) -> list[str]:
    """SIGKILL every stray (see `strays`); return what was killed, for the log."""
    killed = []
    for pid, line in strays(ctx, markers):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(f"{pid} {line}")
    return killed


def memory_mib(ctx: Context) -> dict[str, float]:
    """Proportional set size (PSS: shared pages split among their users) per process group
    started by us, in MiB. The sum is what the cloud costs the machine."""
    groups: dict[int, str] = {}
    for name in names(ctx):
        pid = _raw_pid(ctx, name)
        if pid is not None:
            groups[pid] = name
    usage: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            pgid = int(text[text.rindex(")") + 2 :].split()[2])
            if pgid not in groups:
                continue
            rollup = (stat.parent / "smaps_rollup").read_text()
        except (OSError, ValueError):
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                name = groups[pgid]
                usage[name] = usage.get(name, 0.0) + int(line.split()[1]) / 1024
    return usage


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])
