"""Waiting for a daemon to become ready, and failing with the evidence when it does not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from devcloud import procs

if TYPE_CHECKING:
    from devcloud.context import Context


class DnsError(RuntimeError):
    """The DNS part could not be brought up; the message carries the log tail to read."""


def failure(ctx: Context, process: str, what: str) -> DnsError:
    """A DnsError naming the process, its log, and the log's last lines."""
    log = ctx.log_path(process)
    return DnsError(f"{what}\n--- last lines of {log} ---\n{procs.tail(log, 30)}")


def wait_for(
    ctx: Context,
    process: str,
    what: str,
    ready: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.25,
) -> float:
    """Poll `ready()` until true; return the seconds it took.

    Fails fast when `process` dies (no point waiting out the timeout on a crashed daemon).
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if ready():
            return time.monotonic() - started
        if not ctx.process_alive(process):
            raise failure(ctx, process, f"{process} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise failure(ctx, process, f"{process}: {what} not ready after {timeout:.0f} s")
        time.sleep(interval)
