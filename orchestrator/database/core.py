"""Engine and sessions. All code reaches PostgreSQL through `unit_of_work`, `session_scope` or `get_engine`."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine
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


@lru_cache
def get_engine() -> Engine:
    return create_engine(
        sqlalchemy_url(database_url()),
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
    )


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
