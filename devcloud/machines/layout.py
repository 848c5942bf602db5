"""Where the machine layer keeps its files under the devcloud data directory.

<data_dir>/machines/
    base/<recipe>/rootfs/  the bootstrapped Debian 12 tree (read-only lower layer); one
                           folder per recipe version, so a rebuild never pulls the lower
                           layer from under running machines
    base/<recipe>/rootfs.tar  the same tree as a tar: the image uploaded to Glance
    images/<id>/rootfs/    a Glance image unpacked once, shared by its instances
    instances/<name>/      one machine: state.json, upper/, work/, rootfs/ (overlay mount),
                           console.log, supervisor.log, supervisor.pid
    acng/                  apt-cacher-ng's config, cache and logs
    locks/                 flock files of this data dir (image cache)
    snapshots/<host>/      scratch of snapshots in progress (an instance's root as a tar),
                           per compute host; removed when done and at the host's start
    floating-<owner>.json  the floating IPs this data dir's <owner> (nova, a test) programmed
/run/lock/tonle-devcloud/  flock files of what the host shares (bridges, nftables table)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    data_dir: Path

    @property
    def root(self) -> Path:
        return self.data_dir / "machines"

    @property
    def base_dir(self) -> Path:
        return self.root / "base"

    def base_version_dir(self, recipe: str) -> Path:
        return self.base_dir / recipe

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def instances_dir(self) -> Path:
        return self.root / "instances"

    @property
    def acng_dir(self) -> Path:
        return self.root / "acng"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    def snapshots_dir(self, host: str) -> Path:
        return self.root / "snapshots" / host

    def instance_dir(self, name: str) -> Path:
        return self.instances_dir / name

    def lock(self, name: str) -> AbstractContextManager[None]:
        """An exclusive lock on something of this data dir (`locks/<name>.lock`)."""
        return _flock(self.locks_dir / f"{name}.lock")

    @staticmethod
    def host_lock(name: str) -> AbstractContextManager[None]:
        """An exclusive lock on something the whole host shares — bridges, our nftables
        table — whichever devcloud data dir (a test run, a second checkout) touches it."""
        return _flock(HOST_LOCKS / f"{name}.lock")


#: Host-wide locks live outside any data dir.
HOST_LOCKS = Path("/run/lock/tonle-devcloud")


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    """flock locks belong to an open file description, so this serialises the native threads
    of one nova-compute as well as separate processes (tests, `devcloud down`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
