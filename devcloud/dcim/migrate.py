"""Runs INSIDE Nautobot's venv (copied there as `tonle_nautobot_migrate`), never in the project's.

    <dcim-venv>/bin/python -m tonle_nautobot_migrate --config <nautobot_config.py> migrate --no-input

`nautobot-server` itself, at a raised CPU priority and with Python's cycle collector held back.
A first migration renders Django's model state again for most of Nautobot's ~470 migrations;
each rendering makes thousands of model classes, fields and descriptors, and the collector's
frequent young-generation passes over them were about a quarter of the run. Here the collector
runs only when the process has grown by `GROWTH_BYTES` since its last pass, so garbage is still
freed and memory stays bounded. Measured alone on two cores: 237 s with the default collector
(326 MiB at most), 180 s this way (3.0 GiB at most), 182 s with no collection at all (8 GiB: why
there is a bound).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import time

GROWTH_BYTES = 1 << 30
POLL_SECONDS = 0.5
#: A CPU share about three times a default process's.
NICENESS = -5


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def collect_on_growth() -> None:
    """A full collection each time the process grew by GROWTH_BYTES since the last one. The
    baseline is what was left after it: freed memory is kept by the allocator, so an absolute
    bound would collect over and over once reached."""
    baseline = resident_bytes()
    while True:
        time.sleep(POLL_SECONDS)
        if resident_bytes() > baseline + GROWTH_BYTES:
            gc.collect()
            baseline = resident_bytes()


def raise_priority() -> None:
    """Ahead of the cloud's start it runs beside (root only): this one process is the DCIM's whole
    critical path on a fresh machine, and it shared two cores with the cloud's installs."""
    with contextlib.suppress(PermissionError):
        os.nice(NICENESS)


def main() -> int:
    raise_priority()
    gc.disable()
    threading.Thread(target=collect_on_growth, name="collect-on-growth", daemon=True).start()
    from nautobot.core.cli import main as nautobot_server

    sys.argv[0] = "nautobot-server"
    return int(nautobot_server() or 0)


if __name__ == "__main__":
    sys.exit(main())
