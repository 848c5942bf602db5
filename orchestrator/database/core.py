"""Engine and sessions. All code reaches PostgreSQL through `unit_of_work`, `session_scope` or `get_engine`."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from orchestrator.config import get_settings
from orchestrator.database.embedded import start_embedded

log = logging.getLogger(__name__)


def sqlalchemy_url(libpq_url: str) -> str:
    """The same server, spelled for SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if libpq_url.startswith(prefix):
            return "postgresql+psycopg://" + libpq_url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {libpq_url!r}")


def libpq_url(url: str) -> str:
    """The same server, spelled for libpq (psycopg, procrastinate)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@lru_cache
def database_url() -> str:
    """The libpq URL of the database, starting the embedded server when none is configured."""
    settings = get_settings()
    if settings.database_url:
        return libpq_url(settings.database_url)
    return start_embedded(settings.resolved_data_dir, stop_on_exit=True)


# A pooled connection is pinged before use only after it sat idle this long: the server may have
# restarted or dropped it meanwhile. One that was in use a moment ago is alive, and pinging it
# would cost every request a round trip (about a tenth of an order's CPU).
IDLE_BEFORE_PING_SECONDS = 5.0


def create_database_engine(url: str, **pool: Any) -> Engine:
    """An engine on the libpq `url` whose pool replaces a connection that died while idle."""
    engine = create_engine(sqlalchemy_url(url), **pool)

    @event.listens_for(engine, "checkin")
    def idle_from_now(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            log.info("a pooled database connection died while idle (%s); using a new one", exc)
            raise DisconnectionError(str(exc)) from exc  # the pool discards it and connects anew

    return engine


@lru_cache
def get_engine() -> Engine:
    return create_database_engine(database_url(), pool_size=10, max_overflow=20)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A bare session, for reads; code that writes goes through `unit_of_work()`, which commits."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def reset_caches() -> None:
    """Forget the engine and URL (tests that switch databases)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    database_url.cache_clear()
