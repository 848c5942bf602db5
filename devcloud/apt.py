"""apt-get for every devcloud part, one at a time.

`up` runs its stages in parallel, and three of them may install Debian packages on a fresh
machine (the shared services, the machine layer, BIND). `DPkg::Lock::Timeout` makes apt wait for
dpkg's lock, but `apt-get update` fails at once on the lists lock held by another apt. So every
apt-get of devcloud goes through here: a file lock serialises our own calls, and a lock held by
someone else's apt (a person, unattended-upgrades) is waited for by retrying.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

LOCK_WAIT_SECONDS = 600
_LOCK_FILE = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
_BUSY = ("Could not get lock", "Unable to lock", "is another process using it")


def apt_get(args: Sequence[str], *, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run `apt-get <args>` non-interactively; the caller checks the result."""
    argv = ["apt-get", "-o", f"DPkg::Lock::Timeout={LOCK_WAIT_SECONDS}", "-q", *args]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    with (_LOCK_FILE / "tonle-devcloud-apt.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        while True:
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            busy = result.returncode != 0 and any(mark in result.stderr for mark in _BUSY)
            if not busy or time.monotonic() > deadline:
                return result
            time.sleep(3)
