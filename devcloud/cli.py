"""`python -m devcloud up|down|status|env`: the one entry point of the local data centre.

`env` prints the orchestrator's settings for this data centre (`NAME=value` lines)."""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from devcloud import health, stack
from devcloud.context import Context, data_root
from devcloud.keystone_admin import KeystoneError
from devcloud.orchestrator_env import orchestrator_env
from devcloud.services.common import StageError


class Progress:
    """Prints `[  12.3s] stage: message` lines; times are since the command started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, stage: str, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {stage}: {message}", flush=True)


@contextmanager
def _exclusive(ctx: Context) -> Iterator[None]:
    """One `up`/`down` at a time per data directory; a second waits, then finds the cloud up."""
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    with open(ctx.data_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            ctx.progress("lock", "another `devcloud up/down` is running here; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcloud", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "env"))
    args = parser.parse_args(argv)
    if args.command == "env":
        for name, value in orchestrator_env().items():
            print(f"{name}={value}")
        return 0
    ctx = Context(data_dir=data_root(), progress=Progress())
    try:
        if args.command == "status":
            return 0 if health.status(ctx) else 1
        with _exclusive(ctx):
            if args.command == "up":
                stack.up(ctx)
            else:
                stack.down(ctx)
        return 0
    except BrokenPipeError:
        # `python -m devcloud status | head`: the reader left; nothing to report.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (StageError, KeystoneError, subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        print(f"\ndevcloud {args.command} FAILED: {exc}\n{detail}", file=sys.stderr, flush=True)
        print(f"(all logs: {ctx.logs_dir})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted; `python -m devcloud down` stops what was started",
            file=sys.stderr,
        )
        return 130
