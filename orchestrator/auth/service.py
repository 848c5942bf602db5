"""Users and tokens: creation, lookup by bearer token, revocation."""

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, func, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.auth.models import (
    ApiToken,
    ApiTokenCreate,
    ApiTokenIssued,
    ApiTokenPublic,
    EventStreamLease,
    User,
    UserCreate,
)
from orchestrator.auth.token_cache import Grant
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from orchestrator.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from orchestrator.ministry import service as ministries

TOKEN_PREFIX = "tnl_"
# Parent chains are short (a token issued through a token issued through ...); a longer one is refused.
MAX_TOKEN_GENERATIONS = 16
# An event stream lease not renewed for this long belongs to a process that died.
STREAM_LEASE_STALE = timedelta(seconds=30)


class TooManyStreams(DomainError):
    title = "Too many streams"


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough; no slow hash needed.
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(*, session: Session, actor: Actor, data: UserCreate) -> User:
    policy.check_account(role=data.role, ministry_id=data.ministry_id, platform_wide=data.platform_wide)
    if data.ministry_id is not None:
        ministries.get(session=session, ministry_id=data.ministry_id)
    if session.exec(select(User).where(User.username == data.username)).first():
        raise Conflict(f"user '{data.username}' exists", field="username")
    user = User.model_validate(data)
    session.add(user)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        ministry_id=user.ministry_id,
        action="created",
        detail={"username": user.username, "role": user.role},
    )
    return user


def get_user(*, session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def get_user_by_username(*, session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def list_users(*, session: Session, ministry_id: uuid.UUID | None = None) -> Sequence[User]:
    query = select(User).order_by(User.username)
    if ministry_id is not None:
        query = query.where(User.ministry_id == ministry_id)
    return session.exec(query).all()


def issue_token(
    *,
    session: Session,
    actor: Actor,
    user_id: uuid.UUID,
    data: ApiTokenCreate,
    issued_with: uuid.UUID | None = None,
) -> ApiTokenIssued:
    """A new token; `issued_with` is the token the caller authenticated with, if any.

    A token a caller issues for their own account through another token is that token's child:
    it expires no later and stops working when its parent is revoked or expires. Tokens an admin
    issues for another account (service accounts) stand on their own.
    """
    user = get_user(session=session, user_id=user_id)
    if not (actor.user_id == user.id or policy.allowed(actor, policy.Action.manage_users)):
        raise PermissionDenied("only admins issue tokens for other users")
    settings = get_settings()
    days = data.expires_in_days or settings.token_default_days
    if days > settings.token_max_days:
        raise InvalidInput(
            f"a token lives at most {settings.token_max_days} days; asked for {days}", field="expires_in_days"
        )
    expires_at = utcnow() + timedelta(days=days)
    parent: ApiToken | None = None
    if issued_with is not None and actor.user_id == user.id:
        parent = session.get(ApiToken, issued_with)
        if parent is not None and parent.expires_at is not None:
            expires_at = min(expires_at, parent.expires_at)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        user_id=user.id,
        name=data.name,
        prefix=token[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(token),
        expires_at=expires_at,
        parent_token_id=parent.id if parent else None,
    )
    session.add(record)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        entity="api_token",
        entity_id=record.id,
        ministry_id=user.ministry_id,
        action="issued",
        detail={
            "user": user.username,
            "name": record.name,
            "prefix": record.prefix,
            "expires_at": expires_at.isoformat(),
            "parent": str(parent.id) if parent else None,
        },
    )
    return ApiTokenIssued(**ApiTokenPublic.model_validate(record).model_dump(), token=token)


def list_tokens(*, session: Session, user_id: uuid.UUID) -> Sequence[ApiToken]:
    return session.exec(select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.created_at))).all()


def revoke_token(*, session: Session, actor: Actor, token_id: uuid.UUID) -> ApiToken:
    record = session.get(ApiToken, token_id)
    if record is None or (record.user_id != actor.user_id and not policy.allowed(actor, policy.Action.manage_users)):
        raise NotFound(f"token {token_id} not found")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        session.add(record)
        audit.record(
            session=session,
            actor=actor,
            entity="api_token",
            entity_id=record.id,
            ministry_id=None,
            action="revoked",
            detail={"prefix": record.prefix},
        )
    return record


def revoke_all_tokens(*, session: Session, actor: Actor, user: User) -> int:
    """Revoke every live token of the user (deactivation, compromise)."""
    now = utcnow()
    live = session.exec(select(ApiToken).where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))).all()
    for record in live:
        record.revoked_at = now
        session.add(record)
    audit.record(
        session=session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        ministry_id=user.ministry_id,
        action="tokens_revoked",
        detail={"count": len(live), "prefixes": [r.prefix for r in live]},
    )
    return len(live)


def deactivate_user(*, session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    """The user can no longer sign in: inactive, and every token revoked."""
    user = get_user(session=session, user_id=user_id)
    if user.active:
        user.active = False
        session.add(user)
        audit.record(
            session=session,
            actor=actor,
            entity="user",
            entity_id=user.id,
            ministry_id=user.ministry_id,
            action="deactivated",
            detail={"username": user.username},
        )
    revoke_all_tokens(session=session, actor=actor, user=user)
    return user


def _live_until(session: Session, record: ApiToken, now: datetime) -> tuple[bool, datetime | None]:
    """Whether the token is live (not revoked, not expired, and the same for every token it descends
    from), and the earliest expiry along that chain (None: none expires)."""
    current: ApiToken | None = record
    earliest: datetime | None = None
    for _ in range(MAX_TOKEN_GENERATIONS):
        if current is None:
            return False, None
        if current.revoked_at is not None or (current.expires_at is not None and current.expires_at <= now):
            return False, None
        if current.expires_at is not None and (earliest is None or current.expires_at < earliest):
            earliest = current.expires_at
        if current.parent_token_id is None:
            return True, earliest
        current = session.get(ApiToken, current.parent_token_id)
    return False, None


def _token_is_live(session: Session, record: ApiToken, now: datetime) -> bool:
    return _live_until(session, record, now)[0]


def grant_for_token(*, session: Session, token: str) -> Grant | None:
    """What a live token of an active user grants, in one query (plus one per parent token); or None.

    Stamps the token's last use; the caller commits it (also when the request goes on to fail).
    """
    found = session.exec(
        select(ApiToken, User)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if found is None:
        return None
    record, user = found
    now = utcnow()
    live, expires_at = _live_until(session, record, now)
    if not live or not user.active:
        return None
    # Coarse last-use stamp: one write a minute per token at most, not one per request.
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        record.last_used_at = now
        session.add(record)
    return Grant(actor=user.as_actor(), token_id=record.id, expires_at=expires_at)


def authenticate_token(*, session: Session, token: str) -> tuple[User, ApiToken] | None:
    """The active user owning a live token, with the token's record; or None.

    Stamps the token's last use; the caller commits it (also when the request goes on to fail).
    """
    grant = grant_for_token(session=session, token=token)
    if grant is None:
        return None
    record = session.get(ApiToken, grant.token_id)
    user = session.get(User, grant.actor.user_id)
    if record is None or user is None:
        return None
    return user, record


def authenticate(*, session: Session, token: str) -> User | None:
    """The active user owning a live token, or None."""
    found = authenticate_token(session=session, token=token)
    return found[0] if found else None


def token_still_valid(*, session: Session, token_id: uuid.UUID) -> bool:
    """Whether a token that authenticated earlier (e.g. for a long stream) still would."""
    record = session.get(ApiToken, token_id)
    if record is None or not _token_is_live(session, record, utcnow()):
        return False
    user = session.get(User, record.user_id)
    return user is not None and user.active


def open_stream_lease(*, session: Session, token_id: uuid.UUID, operation_id: uuid.UUID) -> uuid.UUID:
    """Count an event stream against its token's limit, in every API process.

    The token's row is locked while counting, so two streams opened at once cannot both take
    the last place.
    """
    limit = get_settings().sse_streams_per_token
    session.exec(select(ApiToken.id).where(ApiToken.id == token_id).with_for_update())
    now = utcnow()
    session.exec(
        delete(EventStreamLease).where(
            col(EventStreamLease.token_id) == token_id, col(EventStreamLease.seen_at) < now - STREAM_LEASE_STALE
        )
    )
    open_now = session.exec(
        select(func.count()).select_from(EventStreamLease).where(EventStreamLease.token_id == token_id)
    ).one()
    if open_now >= limit:
        raise TooManyStreams(
            f"this token already has {open_now} open event streams (limit {limit}); close one first",
            limit=limit,
        )
    lease = EventStreamLease(token_id=token_id, operation_id=operation_id, started_at=now, seen_at=now)
    session.add(lease)
    session.flush()
    return lease.id


def renew_stream_lease(*, session: Session, lease_id: uuid.UUID) -> None:
    """Mark the stream alive."""
    lease = session.get(EventStreamLease, lease_id)
    if lease is not None and utcnow() - lease.seen_at > STREAM_LEASE_STALE / 3:
        lease.seen_at = utcnow()
        session.add(lease)


def close_stream_lease(*, session: Session, lease_id: uuid.UUID) -> None:
    session.exec(delete(EventStreamLease).where(col(EventStreamLease.id) == lease_id))


def purge_stale_stream_leases(*, session: Session) -> None:
    """Leases left by API processes that died; they stopped counting already."""
    session.exec(delete(EventStreamLease).where(col(EventStreamLease.seen_at) < utcnow() - STREAM_LEASE_STALE))
