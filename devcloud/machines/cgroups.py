"""A cgroup of its own for each machine (there is no systemd on the host to make one)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("devcloud.machines.cgroups")

CGROUP_FS = Path("/sys/fs/cgroup")
CGROUP_PARENT = "tonle-devcloud"


def cgroup_dirs(name: str) -> list[Path]:
    """This machine's cgroup in each hierarchy systemd uses: `name=systemd` and the unified
    one of a hybrid host, or the single tree of a pure cgroup v2 host."""
    if (CGROUP_FS / "cgroup.controllers").exists():  # pure v2
        return [CGROUP_FS / CGROUP_PARENT / name]
    roots = [CGROUP_FS / "systemd", CGROUP_FS / "unified"]
    return [r / CGROUP_PARENT / name for r in roots if (r / "cgroup.procs").exists()]


def enter_own_cgroup(name: str) -> None:
    """Move this process into a cgroup of its own before starting nspawn.

    With no systemd on the host, nspawn (`--keep-unit`) builds the container's cgroups under
    its caller's: had every supervisor stayed in the root cgroup, all guests' systemds would
    share one `/payload` tree and trip over each other's units (seen: a unit failing with
    status 219/CGROUP, so systemd-user-sessions never removed /run/nologin and SSH logins
    were refused).
    """
    for d in cgroup_dirs(name):
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroups(name: str) -> None:
    """Remove the machine's (now empty) cgroups, deepest first; leftovers are harmless."""
    for d in cgroup_dirs(name):
        if not d.exists():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            d.rmdir()


def thaw(name: str) -> None:
    """Undo a freeze whose owner died before it could (nova-compute killed mid-snapshot)."""
    for d in cgroup_dirs(name):
        with contextlib.suppress(OSError):
            if (d / "cgroup.freeze").read_text().strip() == "1":
                log.warning("machine %s was left frozen; thawing it", name)
                (d / "cgroup.freeze").write_text("0")


@contextlib.contextmanager
def frozen(name: str, timeout: float = 10.0) -> Iterator[bool]:
    """Pause every process of the machine (cgroup v2 freezer) for the duration; thawed on exit,
    whatever happens. Yields False, freezing nothing, where the host has no v2 freezer for it."""
    knobs = [d / "cgroup.freeze" for d in cgroup_dirs(name) if (d / "cgroup.freeze").exists()]
    if not knobs:
        log.warning("machine %s has no cgroup v2 freezer; reading it while it runs", name)
        yield False
        return
    knob = knobs[0]
    events = knob.with_name("cgroup.events")
    try:
        knob.write_text("1")
        deadline = time.monotonic() + timeout
        while "frozen 1" not in events.read_text():
            if time.monotonic() > deadline:
                raise TimeoutError(f"machine {name} did not freeze within {timeout:.0f}s")
            time.sleep(0.01)
        yield True
    finally:
        with contextlib.suppress(OSError):  # the machine may be gone: nothing left to thaw
            knob.write_text("0")
