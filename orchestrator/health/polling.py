"""Probing a service until it passes or a deadline passes; shared by every health-check kind."""

import time
from collections.abc import Callable
from typing import Any

from orchestrator.ports import EventSink, ProgressEvent


def poll_until_passed(
    attempt: Callable[[], tuple[bool, str]],
    *,
    describe: Callable[[str], str],
    data: dict[str, Any],
    deadline_seconds: float,
    on_event: EventSink,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Call `attempt` (passed, what was seen) with growing pauses until it passes or the deadline
    would pass before the next try; each change of outcome is one `health.probe` event, whose
    message is `describe(seen)` and whose data is `data` with `passed`."""
    start = clock()
    last = ""
    delay = 1.0
    while True:
        passed, seen = attempt()
        if seen != last or passed:
            on_event(
                ProgressEvent(
                    type="health.probe",
                    message=describe(seen),
                    level="info" if passed else "warning",
                    data={"passed": passed, **data},
                )
            )
            last = seen
        if passed:
            return True
        if clock() - start + delay > deadline_seconds:
            return False
        sleep(delay)
        delay = min(delay * 1.5, 10.0)
