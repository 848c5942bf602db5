"""CSRF protection for every console form: a token bound to the browser's session.

The token is an HMAC of the session cookie (or, before sign-in, of a random cookie of its own),
so a page of another site can neither read nor forge it. Forms send it as `csrf_token`; htmx
requests as the `X-CSRF-Token` header (static/console.js adds it).
"""

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request

from orchestrator import secrets as platform_secrets
from portal_api.console.session import COOKIE, PATH
from portal_api.input_guard import find_unstorable

ANONYMOUS_COOKIE = "tonle_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class CsrfRefused(Exception):
    """The form's CSRF token is missing or wrong (a forged or stale form)."""


class FormUnstorable(Exception):
    """A form field holds text PostgreSQL cannot store (NUL, a lone surrogate)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _seed(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or request.cookies.get(ANONYMOUS_COOKIE)


def token_for(seed: str) -> str:
    return hmac.new(platform_secrets.derived_key("console-csrf"), seed.encode(), hashlib.sha256).hexdigest()


def ensure_seed(request: Request) -> tuple[str, str | None]:
    """The seed of this browser's CSRF tokens, and a new anonymous cookie value to set if it had none."""
    seed = _seed(request)
    if seed:
        return seed, None
    fresh = secrets.token_urlsafe(32)
    return fresh, fresh


def set_anonymous_cookie(response: object, value: str) -> None:
    from starlette.responses import Response

    assert isinstance(response, Response)
    response.set_cookie(ANONYMOUS_COOKIE, value, path=PATH, secure=True, httponly=True, samesite="strict")


async def verify_csrf(request: Request) -> None:
    seed = _seed(request)
    form = await request.form()
    for name, value in form.multi_items():
        if isinstance(value, str):
            found = find_unstorable(value, name)
            if found:
                raise FormUnstorable(*found)
    sent = request.headers.get(HEADER) or form.get(FIELD)
    if not seed or not isinstance(sent, str) or not hmac.compare_digest(sent, token_for(seed)):
        raise CsrfRefused()


CsrfDep = Annotated[None, Depends(verify_csrf)]
