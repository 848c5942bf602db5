"""The unit of work against the real PostgreSQL: commit delivers post-commit messages, rollback drops them."""

import logging
import uuid
from collections.abc import Iterator

import pytest
from sqlmodel import select

from orchestrator.database.core import session_scope
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
