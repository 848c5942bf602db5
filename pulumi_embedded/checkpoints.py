"""Where the engine keeps what it believes: the `CheckpointStore` interface, and the sealing
and encoding of resource states on their way in and out of it.

A store persists JSON-ready records it never interprets: one per resource (written after every
step, so a crash at any moment leaves every finished step recorded), the stack's sealed
outputs, and the stack's last operation (for cancel requests from other processes). Secrets
are sealed (`SecretBox`) before a store sees them. A store also gives each stack a lock that
keeps two operations, in any process, off one stack; if the holder dies, the lock must go.

Implementations: the host application's database (the orchestrator's PostgreSQL store,
`orchestrator/engines/checkpoints.py`), and `memory_store.InMemoryCheckpointStore` for tests.
"""

import json
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from pulumi_embedded.secrets import SecretBox
from pulumi_embedded.state import ResourceState, Snapshot

_STATE_FIELDS = {f.name for f in fields(ResourceState)}


class StackLocked(Exception):
    """Another operation holds the stack's lock (the engine reports it as a transient failure)."""


@dataclass(frozen=True)
class StoredStack:
    """A stack as stored: resource records in the order they were first written (registration
    order, which is dependency order: exports rely on it) and the sealed outputs, if any."""

    resources: list[dict[str, Any]]
    outputs: dict[str, Any] | None


class CheckpointStore(Protocol):
    def lock(self, stack: str, *, wait_seconds: float) -> AbstractContextManager[None]:
        """Hold the stack's lock for the block; raise `StackLocked` after `wait_seconds`."""
        ...

    def load(self, stack: str) -> StoredStack: ...

    def begin(self, stack: str, operation: str) -> None:
        """Record that `operation` runs on the stack (creating the stack's entry if need be)."""
        ...

    def finish(self, stack: str, result: str, outputs: dict[str, Any] | None = None) -> None:
        """Record the operation's result ("succeeded", "failed"); replace the outputs if given."""
        ...

    def request_cancel(self, stack: str) -> bool:
        """Mark the stack's running operation as to be cancelled; False when none is running."""
        ...

    def cancel_requested(self, stack: str) -> bool: ...

    def put(self, stack: str, key: str, urn: str, record: dict[str, Any]) -> None:
        """Insert or replace one resource's record; a replaced record keeps its place in the order."""
        ...

    def remove(self, stack: str, key: str) -> None: ...

    def drop(self, stack: str) -> None:
        """Forget the stack (after a destroy left nothing)."""
        ...

    def close(self) -> None: ...


class SealedCheckpoints:
    """`ResourceState`s and outputs in and out of a store, secrets sealed at rest."""

    def __init__(self, store: CheckpointStore, box: SecretBox) -> None:
        self.store = store
        self.box = box

    def load(self, stack: str) -> Snapshot:
        stored = self.store.load(stack)
        resources = [self._decode(record) for record in stored.resources]
        outputs = self.box.open(stored.outputs) if stored.outputs is not None else {}
        return Snapshot(stack=stack, resources=resources, outputs=outputs)

    def put(self, stack: str, state: ResourceState) -> None:
        self.store.put(stack, state.key, state.urn, self._encode(state))

    def remove(self, stack: str, key: str) -> None:
        self.store.remove(stack, key)

    def finish(self, stack: str, result: str, outputs: dict[str, Any] | None = None) -> None:
        self.store.finish(stack, result, None if outputs is None else self.box.seal(outputs))

    def _encode(self, state: ResourceState) -> dict[str, Any]:
        data = asdict(state)
        data["inputs"] = self.box.seal(state.inputs)
        data["outputs"] = self.box.seal(state.outputs)
        return data

    def _decode(self, data: Any) -> ResourceState:
        if isinstance(data, str | bytes):
            data = json.loads(data)
        known = {k: v for k, v in data.items() if k in _STATE_FIELDS}
        state = ResourceState(**known)
        state.inputs = self.box.open(state.inputs)
        state.outputs = self.box.open(state.outputs)
        return state
