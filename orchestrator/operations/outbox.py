"""Deferring operation jobs only once the operation row is committed.

The operation row is the source of truth. A job is asked for as a post-commit message of the
caller's unit of work (`orchestrator.database.unit_of_work`); if the process dies between commit
and defer, the periodic reconciliation finds the queued operation and defers it again.
"""

import logging
import uuid
from collections.abc import Callable

from sqlmodel import Session

from orchestrator.database.unit_of_work import after_commit

log = logging.getLogger(__name__)

_dispatcher: Callable[[uuid.UUID], None] | None = None


def set_dispatcher(dispatch: Callable[[uuid.UUID], None] | None) -> Callable[[uuid.UUID], None] | None:
    """Install what defers a job for an operation id (the process's bootstrap does this once);
    returns the one it replaces, so that a test can put it back."""
    global _dispatcher
    previous, _dispatcher = _dispatcher, dispatch
    return previous


def enqueue_after_commit(session: Session, operation_id: uuid.UUID) -> None:
    """Defer the operation's job once the caller's unit of work commits; dropped on rollback."""
    after_commit(session, lambda: _dispatch(operation_id))


def _dispatch(operation_id: uuid.UUID) -> None:
    if _dispatcher is None:
        log.warning("no job dispatcher installed; operation %s waits for reconciliation", operation_id)
        return
    _dispatcher(operation_id)
