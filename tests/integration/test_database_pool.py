"""The pool's connections against a real PostgreSQL: one the server dropped while it sat idle is
replaced before use, and one just returned is used without a ping (orchestrator.database.core)."""

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from orchestrator.database import core

pytestmark = pytest.mark.integration


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def drop_backend(pid: int) -> None:
    """What a server restart or an idle timeout does to a pooled connection."""
    with psycopg.connect(core.database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = core.create_database_engine(core.database_url(), pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(engine)
    drop_backend(first)
    monkeypatch.setattr(core, "IDLE_BEFORE_PING_SECONDS", 0.0)

    second = backend_pid(engine)  # no error reaches the caller

    assert second != first


def test_a_connection_in_steady_use_is_not_pinged(engine: Engine) -> None:
    """The control: within the idle window the pool trusts the connection, so a dropped one
    surfaces as the caller's error (which is why the window is short)."""
    drop_backend(backend_pid(engine))

    with pytest.raises(OperationalError):
        backend_pid(engine)
