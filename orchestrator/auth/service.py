"""Users and tokens: creation, lookup by bearer token, revocation."""

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.audit import service as audit
from orchestrator.auth.models import (
    PLATFORM_ROLES,
    Actor,
    ApiToken,
    ApiTokenCreate,
    ApiTokenIssued,
    ApiTokenPublic,
    Role,
    User,
    UserCreate,
)
from orchestrator.database.columns import utcnow
from orchestrator.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from orchestrator.ministry import service as ministries

TOKEN_PREFIX = "tnl_"


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough; no slow hash needed.
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(*, session: Session, actor: Actor, data: UserCreate) -> User:
    if data.role in PLATFORM_ROLES and data.ministry_id is not None:
        raise InvalidInput(f"role '{data.role}' is not tied to a ministry", field="ministry_id")
    if data.role in (Role.requester, Role.ministry_approver) and data.ministry_id is None:
        raise InvalidInput(f"role '{data.role}' needs a ministry", field="ministry_id")
    # Reaching every ministry is never a default: an automation account without a ministry must say so.
    if data.role == Role.automation and data.ministry_id is None and not data.platform_wide:
        raise InvalidInput(
            "an automation account needs a ministry, or platform_wide: true for backups and drills of every ministry",
            field="platform_wide",
        )
    if data.platform_wide and (data.role != Role.automation or data.ministry_id is not None):
        raise InvalidInput("only an automation account without a ministry is platform-wide", field="platform_wide")
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
    session.commit()
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


def issue_token(*, session: Session, actor: Actor, user_id: uuid.UUID, data: ApiTokenCreate) -> ApiTokenIssued:
    user = get_user(session=session, user_id=user_id)
    if not (actor.user_id == user.id or policy.allowed(actor, policy.Action.manage_users)):
        raise PermissionDenied("only admins issue tokens for other users")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        user_id=user.id,
        name=data.name,
        prefix=token[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(token),
        expires_at=utcnow() + timedelta(days=data.expires_in_days) if data.expires_in_days else None,
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
        detail={"user": user.username, "name": record.name, "prefix": record.prefix},
    )
    session.commit()
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
        session.commit()
    return record


def authenticate(*, session: Session, token: str) -> User | None:
    """The active user owning a live token, or None."""
    record = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    now = utcnow()
    if record is None or record.revoked_at is not None:
        return None
    if record.expires_at is not None and record.expires_at <= now:
        return None
    user = session.get(User, record.user_id)
    if user is None or not user.active:
        return None
    # Coarse last-use stamp: one write a minute per token at most, not one per request.
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
        record.last_used_at = now
        session.add(record)
        session.commit()
    return user
