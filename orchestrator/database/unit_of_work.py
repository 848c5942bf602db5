"""The unit of work: the one place a transaction is committed or rolled back.

Service functions take a session, change rows and flush at most; whoever calls them (an API
route, a CLI command, a worker step) opens a unit of work, calls them and commits once. Work
that must happen only once the transaction is durable (deferring an operation's job, a
notification) is recorded during the transaction with `after_commit` and run by `commit()`;
a rollback drops it.
"""

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Executable, Row
from sqlmodel import Session

from orchestrator.database.core import session_scope

log = logging.getLogger(__name__)

_POST_COMMIT_KEY = "tonle_post_commit"


def after_commit(session: Session, message: Callable[[], None]) -> None:
    """Run `message` once the transaction the session is in commits through its unit of work."""
    pending: list[Callable[[], None]] = session.info.setdefault(_POST_COMMIT_KEY, [])
    pending.append(message)


def _take_post_commit(session: Session) -> list[Callable[[], None]]:
    taken: list[Callable[[], None]] = session.info.pop(_POST_COMMIT_KEY, [])
    return taken


class UnitOfWork:
    """One session and the transaction it is in; see the module's docstring."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def commit(self) -> None:
        """Commit, then deliver what was recorded to run after commit.

        A message that fails is logged and dropped, never raised: the transaction is durable by
        then, and whatever the message stood for can be recovered from the rows (a queued
        operation without a job is deferred again by the periodic reconciliation).
        """
        self.session.commit()
        self._deliver()

    def commit_with(self, statement: Executable, parameters: Mapping[str, Any]) -> list[Row[Any]]:
        """Run `statement` as this unit of work's last change and commit; its rows are returned.

        When nothing else was done in the unit of work, the statement is sent alone, as its own
        transaction: PostgreSQL runs one statement atomically, so the BEGIN and the COMMIT, two
        round trips of three, are left out, and so is the session's bookkeeping. Either way it
        commits with what came before it, or, when it fails, the unit of work is rolled back and
        the error raised.
        """
        try:
            if self.session.in_transaction():
                rows = list(self.session.connection().execute(statement, parameters).all())
                self.session.commit()
            else:
                engine = self.session.get_bind()
                assert isinstance(engine, Engine)  # as session_scope() binds every session
                with engine.connect() as connection:
                    alone = connection.execution_options(isolation_level="AUTOCOMMIT")
                    rows = list(alone.execute(statement, parameters).all())
        except Exception:
            self.rollback()
            raise
        self._deliver()
        return rows

    def _deliver(self) -> None:
        for message in _take_post_commit(self.session):
            try:
                message()
            except Exception:
                log.exception("a post-commit message failed; the committed rows stand")

    def rollback(self) -> None:
        """Undo the transaction and forget what was to follow its commit."""
        _take_post_commit(self.session)
        self.session.rollback()


@contextmanager
def unit_of_work() -> Iterator[UnitOfWork]:
    """A unit of work on a fresh session; whatever is not committed when it ends is rolled back."""
    with session_scope() as session:
        uow = UnitOfWork(session)
        try:
            yield uow
        finally:
            # Closing the session rolls back whatever is uncommitted without expiring the rows
            # read (an explicit rollback would, and callers use them after the block).
            _take_post_commit(session)
