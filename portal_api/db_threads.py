"""Database work of async endpoints, run in worker threads few enough not to fight over the GIL.

Sixteen threads each holding a row lock in PostgreSQL and waiting for the GIL to send their next
query hold those locks for many switch intervals; a few threads, each going straight through its
queries, hold them briefly. Requests beyond the limit wait their turn on the event loop, not in a
thread.
"""

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread

T = TypeVar("T")

# About the engine's pool size (10): more threads than connections would only queue in the pool.
DATABASE_THREADS = CapacityLimiter(4)


async def run_db(work: Callable[[], T]) -> T:
    """`work()` (which opens and closes its own unit of work) in a database thread."""
    return await to_thread.run_sync(work, limiter=DATABASE_THREADS)
