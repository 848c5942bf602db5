"""An API process's ear for token changes made anywhere: LISTEN on the token cache's channel.

The listening connection's socket is watched by the event loop, and is also drained (without
blocking) before every use of the cache, so a request never gets an answer from an entry whose
revocation has already reached this process. While the connection is down the cache serves
nothing (every request looks its token up in PostgreSQL) until it is back.
"""

import asyncio
import contextlib
import logging

import psycopg
from psycopg import pq

from orchestrator.auth.token_cache import CHANNEL, TokenCache

log = logging.getLogger(__name__)

RECONNECT_DELAY = (0.5, 10.0)  # first and longest wait before listening again
# How the listening connections show in pg_stat_activity.
APPLICATION_NAME = "tonle-token-revocations"


class RevocationListener:
    def __init__(self, *, database_url: str, cache: TokenCache) -> None:
        self._database_url = database_url
        self._cache = cache
        self._connection: psycopg.Connection | None = None
        self._watched_fd: int | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        """Listen from now on; returns once listening (or after the first failure to, logged)."""
        self._task = asyncio.create_task(self._run(), name="token-revocation-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._close()

    async def _run(self) -> None:
        delay = RECONNECT_DELAY[0]
        while True:
            try:
                await self._listen()
                delay = RECONNECT_DELAY[0]
                await self._lost.wait()
                log.warning("lost the token revocation channel; tokens are looked up in the database until it is back")
            except (psycopg.Error, OSError) as error:
                log.warning("cannot listen for token revocations (%s); retrying in %.1f s", error, delay)
            self._close()
            self._connected.set()  # start() waits no longer
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAY[1])

    async def _listen(self) -> None:
        def connect() -> psycopg.Connection:
            connection = psycopg.connect(self._database_url, autocommit=True, application_name=APPLICATION_NAME)
            connection.execute(f"LISTEN {CHANNEL}")
            return connection

        self._connection = await asyncio.to_thread(connect)
        self._lost.clear()
        self._watched_fd = self._connection.fileno()
        asyncio.get_running_loop().add_reader(self._watched_fd, self.drain)
        # From here on a change committed anywhere reaches this connection; whatever was cached before is dropped.
        self._cache.listen(self.drain)
        self._connected.set()

    def drain(self) -> None:
        """Apply notifications already received; never blocks."""
        connection = self._connection
        if connection is None:
            return
        pgconn = connection.pgconn
        try:
            pgconn.consume_input()
            received = False
            while pgconn.notifies() is not None:
                received = True
        except psycopg.Error:
            received = True
            self._fail()
        else:
            if pgconn.status != pq.ConnStatus.OK:
                self._fail()
        if received:
            self._cache.forget_all()

    def _fail(self) -> None:
        self._cache.listen(None)
        self._lost.set()
        self._unwatch()

    def _unwatch(self) -> None:
        fd, self._watched_fd = self._watched_fd, None
        if fd is not None:
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                asyncio.get_running_loop().remove_reader(fd)

    def _close(self) -> None:
        self._cache.listen(None)
        self._unwatch()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()
