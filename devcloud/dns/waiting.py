"""Waiting for a daemon to become ready, and failing with the evidence when it does not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from devcloud import procs
from devcloud.services.common import StageError

if TYPE_CHECKING:
    from devcloud.context import Context


class DnsError(StageError):
    """The DNS part could not be brought up; the message carries the log tail to read.

    A StageError, so `python -m devcloud up` prints it as a failed stage, not a traceback."""


def failure(ctx: Context, process: str, what: str) -> DnsError:
    """A DnsError naming the process, its log, the likely cause, and the log's last lines."""
    log = ctx.log_path(process)
    tail = procs.tail(log, 30)
    cause = _last_error(procs.tail(log, 400))
    summary = f"\nlikely cause: {cause}" if cause else ""
    return DnsError(f"{what}{summary}\n--- last lines of {log} ---\n{tail}")


def _last_error(text: str) -> str | None:
    """The last line that names an exception, or oslo.log's last ERROR/CRITICAL line: the end
    of a traceback is what one wants to read first."""
    lines = text.splitlines()
    for line in reversed(lines):
        body = line.strip()
        for level in (" ERROR ", " CRITICAL "):
            if level in body:
                # oslo.log: "<time> <pid> ERROR <logger> <text>"; keep <text>
                body = body.split(level, 1)[1].partition(" ")[2].strip()
        head = body.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Refused", "Timeout")) and " " not in head:
            return body
    for line in reversed(lines):
        if " ERROR " in line or " CRITICAL " in line:
            return line.strip()
    return None


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
