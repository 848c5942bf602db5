"""Errors on console pages are pages: the API's problem+json handlers stay for the API, and
requests under /console get the same status with a page in the user's language."""

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from orchestrator.errors import DomainError
from portal_api import problems
from portal_api.console import i18n
from portal_api.console.csrf import CsrfRefused, FormUnstorable
from portal_api.console.session import PATH, SignInRequired, login_url
from portal_api.console.templating import page_language, render

log = logging.getLogger(__name__)
Handler = Callable[[Request, Exception], Awaitable[Response]]

# Page titles per status; the detail under them is the error's own text.
TITLES = {
    400: "The request could not be understood",
    401: "Please sign in",
    403: "You may not do this",
    404: "Not found",
    405: "Not allowed here",
    409: "This cannot be done now",
    413: "Too large",
    422: "Please check what you entered",
    429: "Too many requests",
    500: "Something went wrong on our side",
    501: "Not available yet",
    503: "Temporarily unavailable",
}


def in_console(request: Request) -> bool:
    return request.url.path == PATH or request.url.path.startswith(PATH + "/")


def error_page(request: Request, *, status: int, detail: str, field: str | None = None) -> Response:
    title = TITLES.get(status, "Something went wrong on our side")
    # Fixed messages are in the catalogues; an error's own text (English) shows as it is.
    detail = i18n.gettext(page_language(request), detail)
    return render(
        request, "error.html", {"status": status, "title": title, "detail": detail, "field": field}, status_code=status
    )


def _console_or(api_handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if not in_console(request):
            return await api_handler(request, exc)
        if isinstance(exc, DomainError):
            return error_page(request, status=problems.status_for(exc), detail=exc.detail, field=exc.field)
        if isinstance(exc, StarletteHTTPException):
            detail = str(exc.detail) if exc.status_code != 404 else "There is no such page."
            return error_page(request, status=exc.status_code, detail=detail)
        if isinstance(exc, RequestValidationError):
            errors = exc.errors()
            field = problems.field_of(errors[0]["loc"]) if errors else None
            message = errors[0]["msg"] if errors else "invalid request"
            return error_page(request, status=422, detail=f"{field}: {message}", field=field)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_page(request, status=500, detail="The error is in the server's log.")

    return handle


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = login_url(exc.next_path if request.method == "GET" else PATH + "/")
    if request.headers.get("hx-request"):
        # htmx swaps a redirect's target into the page; send the whole browser instead.
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    log.warning("console: CSRF token refused on %s %s", request.method, request.url.path)
    return error_page(request, status=403, detail="The form was stale or came from another site. Please try again.")


async def _unstorable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormUnstorable)
    return error_page(request, status=422, detail=f"{exc.field}: {exc.message}", field=exc.field)


def install(app: FastAPI) -> None:
    for exc_class in (DomainError, StarletteHTTPException, RequestValidationError, Exception):
        api_handler = cast(Handler, app.exception_handlers[exc_class])
        app.add_exception_handler(exc_class, _console_or(api_handler))
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(FormUnstorable, _unstorable)
