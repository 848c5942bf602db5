"""What one operation did, counted as it happens: steps per kind and time spent in the cloud.

A `Deployment` reports each step and each cloud call to a `Tally` instead of keeping counters
of its own; the engine turns the tally into the change summary and, for whoever asked
(`EmbeddedEngine(on_run=...)`, e.g. a benchmark), into `RunStats`.
"""

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunStats:
    """Figures of one finished operation."""

    stack: str
    operation: str
    seconds: float
    cloud_seconds: float  # summed duration of every cloud call
    mutating_calls: int  # creates, updates, deletes (0 for a no-op up)
    changes: dict[str, int] = field(default_factory=dict)
    cloud_seconds_by_urn: dict[str, float] = field(default_factory=dict)


class Tally:
    """Thread-safe: steps run on the SDK's executor threads and the delete pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: Counter[str] = Counter()
        self._cloud_seconds = 0.0
        self._by_urn: dict[str, float] = {}
        self._mutating = 0

    def step(self, kind: str) -> None:
        with self._lock:
            self._steps[kind] += 1

    def cloud_call(self, *, urn: str, seconds: float, mutating: bool) -> None:
        with self._lock:
            self._cloud_seconds += seconds
            if urn:
                self._by_urn[urn] = self._by_urn.get(urn, 0.0) + seconds
            if mutating:
                self._mutating += 1

    def changes(self) -> dict[str, int]:
        with self._lock:
            return {kind: n for kind, n in self._steps.items() if n}

    def stats(self, *, stack: str, operation: str, seconds: float) -> RunStats:
        with self._lock:
            return RunStats(
                stack=stack,
                operation=operation,
                seconds=seconds,
                cloud_seconds=self._cloud_seconds,
                mutating_calls=self._mutating,
                changes={kind: n for kind, n in self._steps.items() if n},
                cloud_seconds_by_urn=dict(self._by_urn),
            )
