"""`InMemoryCheckpointStore`: a `CheckpointStore` in this process's memory.

For tests and trials without a database. Nothing survives the process, and the lock keeps out
only operations of this process, so it is no store for a service.
"""

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pulumi_embedded.checkpoints import StackLocked, StoredStack


@dataclass
class _Stack:
    last_operation: str = ""
    last_result: str = ""
    outputs: dict[str, Any] | None = None


@dataclass
class InMemoryCheckpointStore:
    stacks: dict[str, _Stack] = field(default_factory=dict)
    # stack -> key -> record; dicts keep insertion order, which is the order a store must keep.
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)

    @contextmanager
    def lock(self, stack: str, *, wait_seconds: float) -> Iterator[None]:
        with self._mutex:
            lock = self._locks.setdefault(stack, threading.Lock())
        if not lock.acquire(timeout=wait_seconds):
            raise StackLocked(f"stack {stack} is locked by another engine operation")
        try:
            yield
        finally:
            lock.release()

    def load(self, stack: str) -> StoredStack:
        with self._mutex:
            head = self.stacks.get(stack)
            records = copy.deepcopy(list(self.resources.get(stack, {}).values()))
            return StoredStack(resources=records, outputs=copy.deepcopy(head.outputs) if head else None)

    def begin(self, stack: str, operation: str) -> None:
        with self._mutex:
            head = self.stacks.setdefault(stack, _Stack())
            head.last_operation, head.last_result = operation, "running"

    def finish(self, stack: str, result: str, outputs: dict[str, Any] | None = None) -> None:
        with self._mutex:
            head = self.stacks.get(stack)
            if head is None:
                return
            head.last_result = result
            if outputs is not None:
                head.outputs = copy.deepcopy(outputs)

    def request_cancel(self, stack: str) -> bool:
        with self._mutex:
            head = self.stacks.get(stack)
            if head is None or head.last_result != "running":
                return False
            head.last_result = "cancelling"
            return True

    def cancel_requested(self, stack: str) -> bool:
        with self._mutex:
            head = self.stacks.get(stack)
            return head is not None and head.last_result == "cancelling"

    def put(self, stack: str, key: str, urn: str, record: dict[str, Any]) -> None:
        with self._mutex:
            self.resources.setdefault(stack, {})[key] = copy.deepcopy(record)

    def remove(self, stack: str, key: str) -> None:
        with self._mutex:
            self.resources.get(stack, {}).pop(key, None)

    def drop(self, stack: str) -> None:
        with self._mutex:
            self.stacks.pop(stack, None)
            self.resources.pop(stack, None)

    def close(self) -> None:
        return None
