"""The token cache's own rules: it serves nothing unless listening, nothing past a token's expiry or
its time to live, and never a lookup that started before something was forgotten."""

import uuid
from datetime import timedelta

import pytest

from orchestrator.actors import Actor, Role
from orchestrator.auth import token_cache
from orchestrator.auth.token_cache import Grant, TokenCache
from orchestrator.database.columns import utcnow

pytestmark = pytest.mark.unit


def grant(expires_in: timedelta | None = timedelta(days=1)) -> Grant:
    actor = Actor(user_id=uuid.uuid4(), username="someone", role=Role.requester, ministry_id=uuid.uuid4())
    return Grant(actor=actor, token_id=uuid.uuid4(), expires_at=utcnow() + expires_in if expires_in else None)


def listening_cache() -> TokenCache:
    cache = TokenCache()
    cache.listen(lambda: None)
    return cache


def test_a_cache_that_is_not_listening_serves_nothing() -> None:
    cache = TokenCache()
    cache.put("hash", grant(), cache.generation)
    assert cache.get("hash", utcnow()) is None
    listening = listening_cache()
    listening.put("hash", grant(), listening.generation)
    listening.listen(None)  # the channel is lost
    assert listening.get("hash", utcnow()) is None


def test_a_lookup_older_than_a_forgetting_is_not_stored() -> None:
    cache = listening_cache()
    started_at = cache.generation
    cache.forget_all()  # a revocation arrived while the lookup was in PostgreSQL
    cache.put("hash", grant(), started_at)
    assert cache.get("hash", utcnow()) is None
    cache.put("hash", grant(), cache.generation)
    assert cache.get("hash", utcnow()) is not None


def test_nothing_is_served_past_the_expiry_or_the_time_to_live(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = listening_cache()
    short = grant(timedelta(seconds=5))
    cache.put("short", short, cache.generation)
    assert cache.get("short", utcnow()) == short
    assert cache.get("short", utcnow() + timedelta(seconds=5)) is None
    forever = grant(None)
    cache.put("forever", forever, cache.generation)
    now = token_cache.time.monotonic()
    monkeypatch.setattr(token_cache.time, "monotonic", lambda: now + token_cache.ENTRY_TTL + 1)  # a clock double
    assert cache.get("forever", utcnow()) is None


def test_notifications_waiting_are_applied_before_an_answer() -> None:
    cache = TokenCache()
    cache.listen(cache.forget_all)  # as if every use found a revocation waiting on the channel
    cache.put("hash", grant(), cache.generation)
    assert len(cache) == 1
    assert cache.get("hash", utcnow()) is None
