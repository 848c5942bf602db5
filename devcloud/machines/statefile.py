"""state.json of a machine, updated under a lock.

Two processes write it: whoever acts on the machine (nova-compute, a test) and the machine's
supervisor. A read-modify-write without the lock could drop the other's change.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


def read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def update(path: Path, **changes: object) -> None:
    """Merge `changes` into the JSON object at `path` (created if missing), atomically."""
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read(path) if path.exists() else {}
        state.update(changes)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)
