"""Where the machine layer keeps its files under the devcloud data directory.

<data_dir>/machines/
    base/<recipe>/rootfs/  the debootstrapped Debian 12 tree (read-only lower layer); one
                           folder per recipe version, so a rebuild never pulls the lower
                           layer from under running machines
    base/<recipe>/rootfs.tar  the same tree as a tar: the image uploaded to Glance
    images/<id>/rootfs/    a Glance image unpacked once, shared by its instances
    instances/<name>/      one machine: state.json, upper/, work/, rootfs/ (overlay mount),
                           console.log, supervisor.log, supervisor.pid
    acng/                  apt-cacher-ng's config, cache and logs
    locks/                 flock files (image cache, bridges, nftables)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
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

    def instance_dir(self, name: str) -> Path:
        return self.instances_dir / name

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive flock on `locks/<name>.lock`.

        flock locks belong to an open file description, so this serialises native threads of
        one nova-compute as well as separate processes (tests, `devcloud down`).
        """
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.locks_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
