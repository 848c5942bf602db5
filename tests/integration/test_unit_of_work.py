"""The unit of work against the real PostgreSQL: commit delivers post-commit messages, rollback drops them,
and `commit_with` sends a lone statement as its own transaction."""

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from orchestrator.database.core import get_engine, session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.ministry.models import Ministry
from orchestrator.operations import outbox
from tests.conftest import Database

pytestmark = pytest.mark.integration


@pytest.fixture
def deferred(database: Database) -> Iterator[list[uuid.UUID]]:
    """The operation ids the dispatcher was handed, in order; the process's own dispatcher is put back after."""
    handed: list[uuid.UUID] = []
    previous = outbox.set_dispatcher(handed.append)
    yield handed
    outbox.set_dispatcher(previous)


def _ministry() -> Ministry:
    code = f"uow-{uuid.uuid4().hex[:8]}"
    return Ministry(code=code, name=f"Ministry {code}", quota_limits={}, dns_suffixes=[])


def _stored(code: str) -> bool:
    with session_scope() as session:
        return session.exec(select(Ministry.id).where(Ministry.code == code)).first() is not None


def test_commit_stores_the_rows_then_hands_the_messages_to_the_dispatcher(deferred: list[uuid.UUID]) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    with unit_of_work() as uow:
        row = _ministry()
        uow.session.add(row)
        outbox.enqueue_after_commit(uow.session, first)
        outbox.enqueue_after_commit(uow.session, second)
        assert deferred == []  # nothing leaves before the commit
        uow.commit()
        assert deferred == [first, second]
    assert _stored(row.code)


def test_an_exception_rolls_back_and_drops_the_messages(deferred: list[uuid.UUID]) -> None:
    row = _ministry()
    with pytest.raises(RuntimeError), unit_of_work() as uow:
        uow.session.add(row)
        uow.session.flush()
        outbox.enqueue_after_commit(uow.session, uuid.uuid4())
        raise RuntimeError("the caller failed before committing")
    assert deferred == []
    assert not _stored(row.code)


def test_leaving_without_commit_rolls_back(deferred: list[uuid.UUID]) -> None:
    row = _ministry()
    with unit_of_work() as uow:
        uow.session.add(row)
        uow.session.flush()
        outbox.enqueue_after_commit(uow.session, uuid.uuid4())
    assert deferred == []
    assert not _stored(row.code)


def test_a_rollback_forgets_the_messages_of_the_undone_transaction(deferred: list[uuid.UUID]) -> None:
    kept = uuid.uuid4()
    undone, stays = _ministry(), _ministry()
    with unit_of_work() as uow:
        uow.session.add(undone)
        outbox.enqueue_after_commit(uow.session, uuid.uuid4())
        uow.rollback()
        uow.session.add(stays)
        outbox.enqueue_after_commit(uow.session, kept)
        uow.commit()
    assert deferred == [kept]
    assert not _stored(undone.code)
    assert _stored(stays.code)


def test_a_dispatcher_error_is_logged_and_the_commit_stands(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    handed: list[uuid.UUID] = []

    def flaky(operation_id: uuid.UUID) -> None:
        handed.append(operation_id)
        if len(handed) == 1:
            raise ConnectionError("the queue is unreachable")

    previous = outbox.set_dispatcher(flaky)
    first, second = uuid.uuid4(), uuid.uuid4()
    row = _ministry()
    try:
        with caplog.at_level(logging.ERROR), unit_of_work() as uow:
            uow.session.add(row)
            outbox.enqueue_after_commit(uow.session, first)
            outbox.enqueue_after_commit(uow.session, second)
            uow.commit()  # does not raise
    finally:
        outbox.set_dispatcher(previous)
    assert _stored(row.code)
    assert handed == [first, second]  # one failure does not cost the next message its delivery
    assert any("post-commit" in r.getMessage() and r.exc_info for r in caplog.records)


def test_without_a_dispatcher_the_commit_stands_and_says_who_waits(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    previous = outbox.set_dispatcher(None)
    operation_id = uuid.uuid4()
    row = _ministry()
    try:
        with caplog.at_level(logging.WARNING), unit_of_work() as uow:
            uow.session.add(row)
            outbox.enqueue_after_commit(uow.session, operation_id)
            uow.commit()
    finally:
        outbox.set_dispatcher(previous)
    assert _stored(row.code)
    assert any(str(operation_id) in r.getMessage() and "reconciliation" in r.getMessage() for r in caplog.records)


# In a transaction that BEGIN opened, a later statement starts after the transaction did; a
# statement sent alone is its transaction's first and only one.
_ALONE = sa.text("SELECT now() = statement_timestamp() AS alone")


def test_commit_with_sends_a_lone_statement_without_begin_and_hands_back_a_transactional_connection(
    database: Database,
) -> None:
    autocommit_at_checkin: list[bool] = []

    def on_checkin(dbapi_connection: Any, _record: Any) -> None:
        autocommit_at_checkin.append(dbapi_connection.autocommit)

    event.listen(get_engine(), "checkin", on_checkin)
    try:
        with unit_of_work() as uow:
            assert [row.alone for row in uow.commit_with(_ALONE, {})] == [True]
    finally:
        event.remove(get_engine(), "checkin", on_checkin)
    # The pool takes the connection back out of autocommit: the next unit of work is a transaction.
    assert autocommit_at_checkin == [False]
    with unit_of_work() as uow:
        uow.session.connection().execute(sa.text("SELECT 1"))
        assert uow.session.connection().execute(_ALONE).scalar() is False


def test_commit_with_after_other_changes_commits_them_together(deferred: list[uuid.UUID]) -> None:
    row, message = _ministry(), uuid.uuid4()
    with unit_of_work() as uow:
        uow.session.add(row)
        uow.session.flush()
        outbox.enqueue_after_commit(uow.session, message)
        assert [r.alone for r in uow.commit_with(_ALONE, {})] == [False]  # inside the transaction
    assert _stored(row.code)
    assert deferred == [message]


def test_commit_with_a_failing_statement_rolls_everything_back(deferred: list[uuid.UUID]) -> None:
    row = _ministry()
    with unit_of_work() as uow:
        uow.session.add(row)
        uow.session.flush()
        outbox.enqueue_after_commit(uow.session, uuid.uuid4())
        with pytest.raises(DBAPIError):
            uow.commit_with(sa.text("SELECT 1 / 0"), {})
        # The unit of work goes on after the rollback, as after `rollback()`.
        assert uow.session.connection().execute(sa.text("SELECT 1")).scalar() == 1
    assert deferred == []
    assert not _stored(row.code)
