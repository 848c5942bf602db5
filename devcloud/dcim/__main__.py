"""`python -m devcloud.dcim up|down|status|wait [--data-dir DIR]`: the DCIM part alone."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devcloud.cli import Progress
from devcloud.context import Context, data_root
from devcloud.dcim import lifecycle
from devcloud.services.common import StageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcloud.dcim", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "wait"))
    parser.add_argument("--data-dir", type=Path, default=None, help="the devcloud data dir (default: as devcloud)")
    parser.add_argument("--timeout", type=float, default=900, help="wait: seconds")
    args = parser.parse_args(argv)
    ctx = Context(data_dir=args.data_dir or data_root(), progress=Progress())
    try:
        if args.command == "up":
            print(json.dumps(lifecycle.up(ctx)), flush=True)
        elif args.command == "down":
            lifecycle.down(ctx)
        elif args.command == "wait":
            lifecycle.wait(ctx, timeout=args.timeout)
        else:
            states = lifecycle.status(ctx)
            for name, ok in states.items():
                print(f"{name:24} {'up' if ok else 'down'}")
            return 0 if all(states.values()) else 1
        return 0
    except StageError as exc:
        print(f"\ndevcloud.dcim {args.command} FAILED: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
