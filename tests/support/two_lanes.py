"""`make test`: the whole suite as two pytest processes running at once.

The cloud tier takes most of the suite's wall time, and much of it is spent waiting on machines,
Ansible and the DCIM, with a core idle. So it runs in one lane, and every other tier runs in a
second lane beside it. The second lane ends with the tests that need only machines of the
machine layer (marker `machines`). Those come last so that the local data centre, which the
first lane brings up, is already up when they share its apt-cacher-ng.

The cloud lane's output streams as it comes. The other lane writes to a log file, which is
printed whole when that lane ends. Each lane has its own embedded PostgreSQL. Arguments are
passed to both lanes. The exit status is non-zero if either lane failed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".tonle"
NO_TESTS_RAN = 5  # pytest's exit status when a selection is empty


@dataclass(frozen=True)
class Lane:
    name: str
    args: tuple[str, ...]
    env: dict[str, str]


CLOUD_TESTS = "cloud and not machines"
CLOUD = Lane("cloud", ("-m", CLOUD_TESTS), {})
# Every other test; tests/conftest.py runs the machine-layer ones last.
BESIDE = Lane("beside", ("-m", f"not ({CLOUD_TESTS})"), {"TONLE_TEST_DATA_DIR": str(DATA / "test-beside")})


def start(lane: Lane, extra: list[str], output: int | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pytest", *lane.args, *extra]
    print(f"[{lane.name}] {shlex.join(command)}", flush=True)
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, **lane.env}, stdout=output, stderr=output)


def outcome(codes: list[int]) -> int:
    """A lane that selected nothing (a narrow PYTEST_ARGS) is not a failure unless both did."""
    failed = [code for code in codes if code not in (0, NO_TESTS_RAN)]
    if failed:
        return failed[0]
    return NO_TESTS_RAN if all(code == NO_TESTS_RAN for code in codes) else 0


def main(extra: list[str]) -> int:
    DATA.mkdir(exist_ok=True)
    log_path = DATA / "test-beside.log"
    t0 = time.monotonic()
    with log_path.open("wb") as log:
        beside = start(BESIDE, extra, log.fileno())
        print(f"[{BESIDE.name}] output in {log_path}", flush=True)
        cloud = start(CLOUD, extra, None)
        try:
            codes = [cloud.wait(), beside.wait()]
        except KeyboardInterrupt:
            for process in (cloud, beside):
                process.terminate()
            for process in (cloud, beside):
                process.wait()
            raise
    print(f"\n[{BESIDE.name}] output of the lane beside the cloud tier:", flush=True)
    sys.stdout.buffer.write(log_path.read_bytes())
    status = outcome(codes)
    print(
        f"\n[lanes] cloud exited {codes[0]}, beside exited {codes[1]}; "
        f"{time.monotonic() - t0:.0f} s wall for both: {'passed' if status == 0 else 'FAILED'}",
        flush=True,
    )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
