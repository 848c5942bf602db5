"""A machine's whole root filesystem as an image tar: what Nova's `createImage` uploads.

The tar is read from the machine's merged overlay (its image tree plus its own upper layer),
in the format `image.image_rootfs` unpacks, so a snapshot boots like any other Glance image.
A running machine is frozen (cgroup v2 freezer) while it is read, so the tar is consistent as
of one instant, as after a power cut; a stopped one is read as it lies.

What belongs to the machine rather than to the image is left out: runtime mounts' contents,
SSH host keys, the instance's user data and first-boot markers; `/etc/machine-id` is empty.
A server booted from the image is then a new machine (see machine._personalise and
guest_init: its own hostname, host keys, machine-id, keys and user data).

No Nova here: the driver uploads the file this module writes.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devcloud.machines._proc import run
from devcloud.machines.cgroups import frozen
from devcloud.machines.machine import Machine, MachineError

log = logging.getLogger("devcloud.machines.snapshot")

#: Members left out of an image tar, as tar patterns anchored at the tree's root (`./`).
#: Runtime file systems keep their (empty) mount points, since the guest mounts over them.
EXCLUDED = (
    "./proc/*",
    "./sys/*",
    "./dev/*",
    "./run/*",
    "./tmp/*",
    "./var/tmp/systemd-private-*",
    "./etc/machine-id",  # added back empty: systemd then treats the next boot as a first one
    "./var/lib/dbus/machine-id",
    "./etc/ssh/ssh_host_*",  # private keys of this machine; the next one makes its own
    # The guest agent's state: this instance's id and first-boot markers, its user data and the
    # scripts made from it (which may hold the order's secrets).
    "./var/lib/tonle/*",
)
TAR_FLAGS = ("--numeric-owner", "--xattrs", "--acls", "--one-file-system")
#: GNU tar exits 1 when a file changed while it was read (only possible on an unfrozen guest).
TAR_CHANGED = 1


@dataclass(frozen=True)
class Snapshot:
    tar: Path
    size: int
    seconds: float
    frozen_seconds: float  # how long a running guest was paused; 0 for a stopped one


def exclude_args() -> list[str]:
    return ["--anchored", "--wildcards", *(f"--exclude={p}" for p in EXCLUDED)]


@contextlib.contextmanager
def work_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A private scratch folder under `parent` (the data dir: the tar is the size of the root
    file system, too big for /tmp), removed whatever happens."""
    parent.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def write_root_tar(machine: Machine, dest: Path, freeze_timeout: float = 10.0) -> Snapshot:
    """Write `machine`'s root filesystem to `dest` (a new file in a folder of the caller's)."""
    t0 = time.monotonic()
    power = machine.power()
    if power == "missing":
        raise MachineError(f"machine {machine.name} does not exist")
    machine.ensure_mounted()  # a stopped machine's overlay may be unmounted (after `down`)
    argv = ["tar", *TAR_FLAGS, *exclude_args(), "-C", str(machine.rootfs), "-cf", str(dest), "."]
    frozen_for = 0.0
    if power == "running":
        try:
            with frozen(machine.name, timeout=freeze_timeout) as did_freeze:
                t_freeze = time.monotonic()
                proc = run(argv, check=False, timeout=1800)
                frozen_for = time.monotonic() - t_freeze if did_freeze else 0.0
        except TimeoutError as exc:  # thawed again by `frozen`; the guest carries on
            raise MachineError(f"snapshot of machine {machine.name}: {exc}") from exc
        consistent = did_freeze
    else:
        proc = run(argv, check=False, timeout=1800)
        consistent = True
    if proc.returncode == TAR_CHANGED and not consistent:
        log.warning("snapshot of %s: files changed while read (guest not frozen): %s", machine.name, proc.stderr[-500:])
    elif proc.returncode != 0:
        raise MachineError(f"tar of machine {machine.name} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    _append_empty_machine_id(dest)
    snap = Snapshot(tar=dest, size=dest.stat().st_size, seconds=time.monotonic() - t0, frozen_seconds=frozen_for)
    log.info(
        "snapshot tar of %s (%s): %.1f MiB in %.2fs, guest frozen %.2fs",
        machine.name, power, snap.size / 2**20, snap.seconds, snap.frozen_seconds,
    )  # fmt: skip
    return snap


def _append_empty_machine_id(tar: Path) -> None:
    """An empty /etc/machine-id: systemd fills it at boot (devcloud's spawn writes one first)."""
    with work_dir(tar.parent, ".machine-id-") as staging:
        (staging / "etc").mkdir()
        mid = staging / "etc/machine-id"
        mid.write_text("")
        mid.chmod(0o444)
        run(
            [
                "tar",
                "--numeric-owner",
                "--owner=0",
                "--group=0",
                "-C",
                str(staging),
                "-rf",
                str(tar),
                "./etc/machine-id",
            ]
        )
