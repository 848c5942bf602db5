"""Errors as RFC 9457 problem details (`application/problem+json`), naming the field at fault."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.auth.service import TooManyStreams
from orchestrator.errors import (
    Conflict,
    DomainError,
    IllegalTransition,
    InvalidInput,
    NotFound,
    NotImplementedYet,
    PermissionDenied,
    QuotaExceeded,
    Unavailable,
)
from orchestrator.operations.uploads import UploadTooLarge, UploadTooSlow

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_OF: dict[type[DomainError], int] = {
    NotFound: 404,
    PermissionDenied: 403,
    InvalidInput: 422,
    IllegalTransition: 409,
    Conflict: 409,
    QuotaExceeded: 422,
    NotImplementedYet: 501,
    Unavailable: 503,
    UploadTooLarge: 413,
    UploadTooSlow: 408,
    TooManyStreams: 429,
}


def problem(
    *, status: int, title: str, detail: str, instance: str, kind: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:tonle:problem:{kind or title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def status_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    extra: dict[str, Any] = dict(exc.extra)
    if isinstance(exc, InvalidInput) and exc.errors:
        extra["errors"] = exc.errors
    return problem(
        status=status_for(exc),
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        field=exc.field,
        **extra,
    )


def field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": field_of(e["loc"]), "message": e["msg"]} for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return problem(
        status=422,
        title="Invalid input",
        kind="invalid-input",
        detail=f"{first['field']}: {first['message']}",
        instance=request.url.path,
        field=first["field"],
        errors=errors,
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(
        status=exc.status_code, title=_reason(exc.status_code), detail=str(exc.detail), instance=request.url.path
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        status=500,
        title="Internal error",
        detail="the server failed; the error is in its log",
        instance=request.url.path,
    )


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
