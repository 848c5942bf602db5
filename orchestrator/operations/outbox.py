"""Deferring operation jobs only once the operation row is committed.

The operation row is the source of truth. If the process dies between commit and defer, the
periodic reconciliation in the pipeline finds the queued operation and defers it again.
"""

import logging
import uuid
from collections.abc import Callable

from sqlalchemy import event
from sqlmodel import Session

log = logging.getLogger(__name__)

_PENDING_KEY = "tonle_operations_to_enqueue"
_dispatcher: Callable[[uuid.UUID], None] | None = None


def set_dispatcher(dispatch: Callable[[uuid.UUID], None] | None) -> None:
    """Install what defers a job for an operation id (the pipeline's queue does this)."""
    global _dispatcher
    _dispatcher = dispatch


def enqueue_after_commit(session: Session, operation_id: uuid.UUID) -> None:
    pending: list[uuid.UUID] = session.info.setdefault(_PENDING_KEY, [])
    pending.append(operation_id)


@event.listens_for(Session, "after_commit")
def _dispatch_committed(session: Session) -> None:
    pending: list[uuid.UUID] = session.info.pop(_PENDING_KEY, [])
    for operation_id in pending:
        if _dispatcher is None:
            log.warning("no job dispatcher installed; operation %s waits for reconciliation", operation_id)
            continue
        try:
            _dispatcher(operation_id)
        except Exception:
            # The row is committed: reconciliation will defer it. Never fail the caller's request.
            log.exception("could not defer the job of operation %s; reconciliation will retry", operation_id)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
