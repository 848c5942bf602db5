"""This process's memory of the bearer tokens it has authenticated: a request costs no query for its token.

Whatever could make a cached token refuse (a token revoked, an expiry moved, a user deactivated or
changed, such a row deleted) is announced in the very transaction that does it: a session hook sees
every ORM change to those rows and sends a PostgreSQL notification on CHANNEL, delivered when the
transaction commits. The process that commits forgets every entry at once; every API process
forgets them all when the notification reaches it (see `revocation_listener`, which also drains
waiting notifications before each use). Entries are served only while this process is listening
for notifications, never past the earliest expiry along the token's parents, and for ENTRY_TTL at
most; after that the token is looked up again, which also renews its coarse last-use stamp.
"""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.orm import Session

from orchestrator.actors import Actor
from orchestrator.auth.models import ApiToken, User

CHANNEL = "tonle_token_changes"
# Bounds an entry's life should a notification be lost without the connection failing.
ENTRY_TTL = 30.0
# Memory bound: a flood of distinct valid tokens empties the cache rather than growing it.
MAX_ENTRIES = 10_000

# The columns whose change can turn a live token into a refused one, or change who its caller is.
WATCHED_COLUMNS: dict[type, frozenset[str]] = {
    ApiToken: frozenset({"revoked_at", "expires_at", "user_id", "parent_token_id", "token_hash"}),
    User: frozenset({"active", "role", "ministry_id", "platform_wide", "username"}),
}
_ANNOUNCED = "tonle_token_change_announced"


@dataclass(frozen=True)
class Grant:
    """Who a live token's caller is, and until when: the earliest expiry along the token's parents."""

    actor: Actor
    token_id: uuid.UUID
    expires_at: datetime | None


class TokenCache:
    """Grants by token hash. Read on the event loop; cleared from any thread (commit hooks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Grant, float]] = {}
        self._generation = 0
        self._listening = False
        self._drain: Callable[[], None] | None = None

    @property
    def generation(self) -> int:
        """Changes whenever entries are forgotten; a lookup started before a change must not be stored."""
        return self._generation

    @property
    def listening(self) -> bool:
        return self._listening

    def get(self, token_hash: str, now: datetime) -> Grant | None:
        if self._drain is not None:
            self._drain()  # a revocation already notified is applied before this answer
        if not self._listening:
            return None
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        grant, stored_at = entry
        if time.monotonic() - stored_at > ENTRY_TTL or (grant.expires_at is not None and grant.expires_at <= now):
            self._entries.pop(token_hash, None)
            return None
        return grant

    def put(self, token_hash: str, grant: Grant, generation: int) -> None:
        """Remember a grant looked up when the cache was at `generation`, unless something changed since."""
        with self._lock:
            if not self._listening or generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token_hash] = (grant, time.monotonic())

    def forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def listen(self, drain: Callable[[], None] | None) -> None:
        """Serve entries (with `drain` run before each use) or, given None, stop serving them."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._drain = drain
            self._listening = drain is not None

    def __len__(self) -> int:
        return len(self._entries)


cache = TokenCache()


def _changes_tokens(session: Session) -> bool:
    for instance in session.deleted:
        if type(instance) in WATCHED_COLUMNS:
            return True
    for instance in session.dirty:
        watched = WATCHED_COLUMNS.get(type(instance))
        if watched and any(inspect(instance).attrs[name].history.has_changes() for name in watched):
            return True
    return False


@event.listens_for(Session, "before_flush")
def _announce_token_changes(session: Session, flush_context: Any, instances: Any) -> None:
    # Sent inside the transaction: PostgreSQL delivers it exactly when (and only if) it commits.
    # Once per transaction (the mark names the transaction, so a reused session announces again).
    transaction = session.get_transaction()
    if session.info.get(_ANNOUNCED) is not transaction and _changes_tokens(session):
        session.connection().execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        session.info[_ANNOUNCED] = transaction


@event.listens_for(Session, "after_commit")
def _forget_after_own_change(session: Session) -> None:
    # This process does not wait for its own notification to come back.
    if session.info.pop(_ANNOUNCED, None) is not None:
        cache.forget_all()


@event.listens_for(Session, "after_rollback")
def _drop_unsent_announcement(session: Session) -> None:
    session.info.pop(_ANNOUNCED, None)
