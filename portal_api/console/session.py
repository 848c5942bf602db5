"""Console sign-in: a secure cookie holding a console-session API token.

A console session is an API token of its own (named `console session`), so everything that
governs tokens governs sessions: the token cache, revocation heard by every API process, expiry,
audit. Signed in with an API token, the session is that token's child and ends with it; signing
out revokes it.
"""

import uuid
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlmodel import Session

from orchestrator.actors import Actor
from orchestrator.auth import service as auth
from orchestrator.auth.models import ApiToken, ApiTokenCreate, User
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from portal_api.console import i18n
from portal_api.deps import actor_for_token

COOKIE = "tonle_console"
LANGUAGE_COOKIE = "tonle_lang"
PATH = "/console"
SESSION_TOKEN_NAME = "console session"


class SignInRequired(Exception):
    """No live console session; the handler sends the browser to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def session_token(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    # A token is short ASCII; anything else is not one of ours and is not looked up.
    return value if value and len(value) <= 100 and value.isascii() else None


async def console_actor(request: Request) -> Actor:
    token = session_token(request)
    actor = await actor_for_token(token) if token else None
    if actor is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(here)
    request.state.actor = actor
    return actor


async def optional_console_actor(request: Request) -> Actor | None:
    token = session_token(request)
    actor = await actor_for_token(token) if token else None
    request.state.actor = actor
    return actor


def console_token(request: Request, _: "ConsoleActorDep") -> str:
    token = session_token(request)
    assert token is not None  # ConsoleActorDep has sent a request without one to the login page
    return token


ConsoleActorDep = Annotated[Actor, Depends(console_actor)]
OptionalActorDep = Annotated[Actor | None, Depends(optional_console_actor)]
ConsoleTokenDep = Annotated[str, Depends(console_token)]


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a path of the console itself (hostile input: an open
    redirect to another site, `//host` or a backslash trick, is refused)."""
    if (
        value
        and value.startswith(PATH + "/")
        and not value.startswith("//")
        and "\\" not in value
        and all(c.isprintable() for c in value)
        and len(value) <= 2000
    ):
        return value
    return PATH + "/"


def login_url(next_path: str) -> str:
    return f"{PATH}/login?next={quote(safe_next(next_path), safe='/')}"


def sign_in(*, session: Session, user: User, response: Response, parent_token_id: uuid.UUID | None = None) -> None:
    """Issue the console-session token for `user` and set it on `response` (the caller commits)."""
    settings = get_settings()
    actor = user.as_actor()
    issued = auth.issue_token(
        session=session,
        actor=actor,
        user_id=user.id,
        data=ApiTokenCreate(name=SESSION_TOKEN_NAME, expires_in_days=1),
        issued_with=parent_token_id,
    )
    record = session.get(ApiToken, issued.id)
    assert record is not None
    lifetime = timedelta(hours=settings.console_session_hours)
    expires_at = utcnow() + lifetime
    if record.expires_at is None or expires_at < record.expires_at:
        record.expires_at = expires_at
    response.set_cookie(
        COOKIE,
        issued.token,
        max_age=int(lifetime.total_seconds()),
        path=PATH,
        secure=True,
        httponly=True,
        samesite="lax",
    )
    if user.preferred_language in i18n.LANGUAGES:
        remember_language(response, user.preferred_language)


def sign_out(*, session: Session, request: Request, response: Response) -> None:
    """Revoke the session's token (the caller commits) and clear the cookie."""
    token = session_token(request)
    found = auth.authenticate_token(session=session, token=token) if token else None
    if found is not None:
        user, record = found
        auth.revoke_token(session=session, actor=user.as_actor(), token_id=record.id)
    response.delete_cookie(COOKIE, path=PATH, secure=True, httponly=True, samesite="lax")


def remember_language(response: Response, lang: str) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE, lang, max_age=365 * 24 * 3600, path=PATH, secure=True, httponly=True, samesite="lax"
    )
