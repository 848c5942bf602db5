"""Errors, subprocesses and waiting for the DCIM part."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from devcloud import procs
from devcloud.services.common import StageError

if TYPE_CHECKING:
    from devcloud.context import Context


class DcimError(StageError):
    """The DCIM part could not be brought up; the message says what and where to look.

    A StageError, so `python -m devcloud up` prints it as a failed stage, not a traceback."""


def run(
    argv: Sequence[str],
    what: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    input_text: str | None = None,
) -> str:
    """Run a command to completion; DcimError with its output's tail when it fails."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, check=False, env=env, timeout=timeout, input=input_text
        )
    except subprocess.TimeoutExpired as exc:
        raise DcimError(f"{what} did not finish in {timeout:.0f} s ({' '.join(argv)})") from exc
    if result.returncode != 0:
        raise DcimError(f"{what} failed ({' '.join(argv)}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result.stdout


def failure(ctx: Context, process: str, what: str) -> DcimError:
    log = ctx.log_path(process)
    return DcimError(f"{what}\n--- last lines of {log} ---\n{procs.tail(log, 30)}")


def wait_for(
    ctx: Context, process: str, what: str, ready: Callable[[], bool], *, timeout: float, interval: float = 0.5
) -> float:
    """Poll `ready()` until true; fail fast (with the log's tail) when `process` dies."""
    started = time.monotonic()
    while True:
        if ready():
            return time.monotonic() - started
        if not ctx.process_alive(process):
            raise failure(ctx, process, f"{process} exited while waiting for {what}")
        if time.monotonic() - started > timeout:
            raise failure(ctx, process, f"{process}: {what} not ready after {timeout:.0f} s")
        time.sleep(interval)
