"""The engine's progress events (`types.ProgressEvent`).

The same types and data keys as the Pulumi Automation API's engine events, as a host shows them:
`resource.pre`, `resource.outcome`, `resource.failed` (data: op, urn, type), `diagnostic`,
`summary` (data: changes); plus `resource.drift` from refresh.
"""

import threading
from typing import Any

from pulumi_embedded.protocol import urn_name, urn_type
from pulumi_embedded.types import EventSink, ProgressEvent

# Past tense of each step, for messages.
DONE = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "delete": "deleted",
    "same": "unchanged",
    "read": "read",
    "refresh": "refreshed",
}


class Emitter:
    """Serialises events from the engine's worker threads into one sink, in order."""

    def __init__(self, sink: EventSink, *, stack: str, operation: str) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self.stack = stack
        self.operation = operation

    def emit(self, type_: str, message: str, *, level: str = "info", **data: Any) -> None:
        event = ProgressEvent(
            type=type_, message=message, level=level, data={"stack": self.stack, "operation": self.operation, **data}
        )
        with self._lock:
            self._sink(event)

    def pre(
        self,
        op: str,
        urn: str,
        *,
        preview: bool,
        changed: tuple[str, ...] = (),
        replace_keys: tuple[str, ...] = (),
        unknown: tuple[str, ...] = (),
    ) -> None:
        """A step about to run (or, in a preview, that would run). `unknown`: inputs not known
        until other resources exist (a preview shows them as such, never as values)."""
        verb = f"would {op}" if preview else f"{op.rstrip('e')}ing"
        detail = f" ({', '.join(changed)})" if changed else ""
        later = f"; known after apply: {', '.join(unknown)}" if unknown else ""
        self.emit(
            "resource.pre",
            f"{verb} {urn_type(urn)} {urn_name(urn)}{detail}{later}",
            urn=urn,
            type=urn_type(urn),
            op=op,
            preview=preview,
            changed=list(changed),
            replace_keys=list(replace_keys),
            unknown=list(unknown),
        )

    def outcome(self, op: str, urn: str, *, seconds: float, error: str | None = None, id_: str = "") -> None:
        if error:
            self.emit(
                "resource.failed",
                f"failed to {op} {urn_type(urn)} {urn_name(urn)}: {error}",
                level="error",
                urn=urn,
                type=urn_type(urn),
                op=op,
                status="failed",
                error=error,
                seconds=round(seconds, 3),
            )
        else:
            self.emit(
                "resource.outcome",
                f"{DONE.get(op, op)} {urn_type(urn)} {urn_name(urn)} in {seconds:.1f}s",
                urn=urn,
                type=urn_type(urn),
                op=op,
                status="succeeded",
                id=id_,
                seconds=round(seconds, 3),
            )
