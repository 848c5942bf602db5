"""Run host commands with errors that say what failed and why.

Every host change (ip, nft, mount, mmdebstrap ...) goes through `run`, so a failure at 3 a.m.
names the exact command, its exit code and its stderr instead of a bare CalledProcessError.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence

log = logging.getLogger("devcloud.machines")


class HostCommandError(RuntimeError):
    """A host command failed; the message carries the command line and its stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"`{' '.join(argv)}` exited {returncode}: {stderr.strip()[-2000:]}")


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """Run `argv`, capture its output, raise `HostCommandError` on failure when `check`."""
    log.debug("run: %s", " ".join(argv))
    proc = subprocess.run(
        list(argv),
        input=input_text,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise HostCommandError(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc


def ok(argv: Sequence[str]) -> bool:
    """True when `argv` exits 0; for probes such as "does this link exist"."""
    return run(argv, check=False).returncode == 0
