"""`python -m devcloud up|down|status`: the one entry point of the local data centre."""

from __future__ import annotations

import argparse
import sys
import time

from devcloud import stack
from devcloud.context import Context, data_root
from devcloud.services.common import StageError


class Progress:
    """Prints `[  12.3s] stage: message` lines; times are since the command started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, stage: str, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {stage}: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcloud", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    ctx = Context(data_dir=data_root(), progress=Progress())
    try:
        if args.command == "up":
            stack.up(ctx)
            return 0
        if args.command == "down":
            stack.down(ctx)
            return 0
        return 0 if stack.status(ctx) else 1
    except StageError as exc:
        print(f"\ndevcloud {args.command} FAILED: {exc}", file=sys.stderr, flush=True)
        print(f"(all logs: {ctx.logs_dir})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted; `python -m devcloud down` stops what was started",
            file=sys.stderr,
        )
        return 130
