"""Stack checkpoints in PostgreSQL: written one resource at a time, after every step.

Each resource is one row (`engine_resource`), so a step writes only what it changed and a
crash at any moment leaves every finished step recorded. Secrets are sealed before they are
written (`SecretBox`). A per-stack advisory lock keeps two operations off one stack.
"""

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from orchestrator.engines.embedded.secrets import SecretBox
from orchestrator.engines.embedded.state import ResourceState, Snapshot

log = logging.getLogger("tonle.engine.store")

_STATE_FIELDS = {f.name for f in fields(ResourceState)}


class StackLocked(Exception):
    """Another operation holds the stack's lock."""


class CheckpointStore:
    def __init__(self, database_url: str, box: SecretBox, *, pool_size: int = 8) -> None:
        self.box = box
        self._url = database_url
        self._pool = ConnectionPool(
            database_url, min_size=2, max_size=pool_size, open=True, kwargs={"autocommit": True}, name="tonle-engine"
        )
        self._seq_lock = threading.Lock()
        self._last_seq = 0

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def lock(self, stack: str, *, wait_seconds: float = 10.0) -> Iterator[None]:
        """Hold the stack's advisory lock (session level, on a connection kept for the duration).

        The connection is its own, not the pool's: many operations holding locks must never leave
        the pool without a connection for their checkpoint writes. If the process dies, the
        connection closes and PostgreSQL releases the lock."""
        with psycopg.connect(self._url, autocommit=True) as conn:
            deadline = time.monotonic() + wait_seconds
            while True:
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (f"tonle.engine:{stack}",)
                ).fetchone()
                if row and row[0]:
                    break
                if time.monotonic() > deadline:
                    raise StackLocked(f"stack {stack} is locked by another engine operation")
                time.sleep(0.2)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"tonle.engine:{stack}",))

    def load(self, stack: str) -> Snapshot:
        with self._pool.connection() as conn:
            head = conn.execute("SELECT outputs FROM engine_stack WHERE name = %s", (stack,)).fetchone()
            rows = conn.execute(
                "SELECT state FROM engine_resource WHERE stack = %s ORDER BY seq, key", (stack,)
            ).fetchall()
        resources = [self._decode(row[0]) for row in rows]
        outputs = self.box.open(head[0]) if head else {}
        return Snapshot(stack=stack, resources=resources, outputs=outputs)

    def exists(self, stack: str) -> bool:
        with self._pool.connection() as conn:
            return conn.execute("SELECT 1 FROM engine_stack WHERE name = %s", (stack,)).fetchone() is not None

    def begin(self, stack: str, operation: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO engine_stack (name, last_operation, last_result) VALUES (%s, %s, 'running') "
                "ON CONFLICT (name) DO UPDATE SET last_operation = excluded.last_operation, "
                "last_result = 'running', updated_at = now()",
                (stack, operation),
            )

    def finish(self, stack: str, result: str, outputs: dict[str, Any] | None = None) -> None:
        with self._pool.connection() as conn:
            if outputs is None:
                conn.execute(
                    "UPDATE engine_stack SET last_result = %s, version = version + 1, updated_at = now() "
                    "WHERE name = %s",
                    (result, stack),
                )
            else:
                conn.execute(
                    "UPDATE engine_stack SET last_result = %s, outputs = %s, version = version + 1, "
                    "updated_at = now() WHERE name = %s",
                    (result, Jsonb(self.box.seal(outputs)), stack),
                )

    def request_cancel(self, stack: str) -> bool:
        """Ask the stack's running operation to stop; False when none is running."""
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE engine_stack SET last_result = 'cancelling', updated_at = now() "
                "WHERE name = %s AND last_result = 'running'",
                (stack,),
            )
            return cursor.rowcount > 0

    def cancel_requested(self, stack: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT last_result FROM engine_stack WHERE name = %s", (stack,)).fetchone()
        return bool(row and row[0] == "cancelling")

    def put(self, stack: str, state: ResourceState) -> None:
        """Record one resource (insert or replace its row)."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO engine_resource (key, stack, urn, seq, state) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state, urn = excluded.urn, updated_at = now()",
                (state.key, stack, state.urn, self._next_seq(), Jsonb(self._encode(state))),
            )

    def remove(self, stack: str, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM engine_resource WHERE stack = %s AND key = %s", (stack, key))

    def drop(self, stack: str) -> None:
        """Forget a stack entirely (after a destroy left nothing)."""
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM engine_stack WHERE name = %s", (stack,))

    def _next_seq(self) -> int:
        # Rows keep registration order, which is dependency order (exports rely on it).
        with self._seq_lock:
            self._last_seq = max(self._last_seq + 1, time.time_ns())
            return self._last_seq

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
