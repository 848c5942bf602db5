"""apt-get for every devcloud part, one at a time.

`up` runs its stages in parallel, and three of them may install Debian packages on a fresh
machine (the shared services, the machine layer, BIND). `DPkg::Lock::Timeout` makes apt wait for
dpkg's lock, but `apt-get update` fails at once on the lists lock held by another apt. So every
apt-get of devcloud goes through here: a file lock serialises our own calls, and a lock held by
someone else's apt (a person, unattended-upgrades) is waited for by retrying.

Only the standard library here: the Makefile runs it with the system Python before any virtual
environment exists (`python3 -m devcloud.apt install restic`). With TONLE_DEVCLOUD_APT_JOURNAL
set, each run appends `<start> <end> <args>` (epoch seconds) to that file, so a benchmark can
count the runs and see that none overlapped.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
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
            started = time.time()
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            _journal(started, args)
            busy = result.returncode != 0 and any(mark in result.stderr for mark in _BUSY)
            if not busy or time.monotonic() > deadline:
                return result
            time.sleep(3)


def _journal(started: float, args: Sequence[str]) -> None:
    journal = os.environ.get("TONLE_DEVCLOUD_APT_JOURNAL")
    if journal:
        with open(journal, "a") as handle:
            handle.write(f"{started:.3f} {time.time():.3f} {' '.join(args)}\n")


def main(argv: Sequence[str]) -> int:
    """`python3 -m devcloud.apt install PKG...`: refresh the lists, then install, each through
    the lock (the Makefile's packages, before the virtual environment exists)."""
    if len(argv) < 2 or argv[0] != "install":
        print("usage: python3 -m devcloud.apt install PACKAGE...", file=sys.stderr)
        return 2
    for args in (["update"], ["install", "-y", "--no-install-recommends", *argv[1:]]):
        result = apt_get(args)
        if result.returncode != 0:
            print(f"apt-get {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}", file=sys.stderr)
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
