"""The embedded engine's checkpoints in the orchestrator's PostgreSQL (tables `engine_stack`,
`engine_resource`, migration 0002): `pulumi_embedded.checkpoints.CheckpointStore` on our database.

Each resource is one row, so a step writes only what it changed. Records arrive sealed (the
engine encrypts secrets before a store sees them). The per-stack lock is a session-level
advisory lock on a connection of its own, so a dead worker's lock goes with its connection.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from pulumi_embedded.checkpoints import StackLocked, StoredStack


class PostgresCheckpointStore:
    def __init__(self, database_url: str, *, pool_size: int = 8) -> None:
        """`database_url`: libpq URL of a database migrated to 0002 or later. A checkpoint write
        takes a millisecond or two: a few pooled connections serve many parallel steps."""
        self._url = database_url
        self._pool = ConnectionPool(
            database_url, min_size=2, max_size=pool_size, open=True, kwargs={"autocommit": True}, name="tonle-engine"
        )
        self._seq_lock = threading.Lock()
        self._last_seq = 0

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def lock(self, stack: str, *, wait_seconds: float) -> Iterator[None]:
        # Its own connection, not the pool's: many operations holding locks must never leave the
        # pool without a connection for their checkpoint writes.
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

    def load(self, stack: str) -> StoredStack:
        with self._pool.connection() as conn:
            head = conn.execute("SELECT outputs FROM engine_stack WHERE name = %s", (stack,)).fetchone()
            rows = conn.execute(
                "SELECT state FROM engine_resource WHERE stack = %s ORDER BY seq, key", (stack,)
            ).fetchall()
        records = [json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0] for row in rows]
        return StoredStack(resources=records, outputs=head[0] if head else None)

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
                    (result, Jsonb(outputs), stack),
                )

    def request_cancel(self, stack: str) -> bool:
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

    def put(self, stack: str, key: str, urn: str, record: dict[str, Any]) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO engine_resource (key, stack, urn, seq, state) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state, urn = excluded.urn, updated_at = now()",
                (key, stack, urn, self._next_seq(), Jsonb(record)),
            )

    def remove(self, stack: str, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM engine_resource WHERE stack = %s AND key = %s", (stack, key))

    def drop(self, stack: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM engine_stack WHERE name = %s", (stack,))

    def _next_seq(self) -> int:
        # Rows keep the order they were first written in (registration order = dependency order).
        with self._seq_lock:
            self._last_seq = max(self._last_seq + 1, time.time_ns())
            return self._last_seq
