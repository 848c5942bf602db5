"""Refuses, in one place, input that PostgreSQL cannot store, before any endpoint sees it.

PostgreSQL text cannot hold NUL, UTF-8 cannot hold lone surrogates (JSON can spell both as
`\\u0000` and `\\ud800`), and integer columns stop at 64 bits. Without this guard each of them
would reach the database and fail there as a 500. The guard looks at the path, the query string
and any JSON body, and answers 422 naming the field at fault. JSON bodies are also capped.
"""

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal_api.problems import problem

MAX_JSON_BODY = 1 << 20
INT64 = (-(2**63), 2**63 - 1)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "holds a NUL character, which cannot be stored"
    if _LONE_SURROGATE.search(value):
        return "holds a lone surrogate, which is not valid Unicode"
    return None


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field, message) of the first value in a decoded JSON document that cannot be stored."""
    for where, item in _walk(value, path):
        if isinstance(item, str):
            message = _bad_text(item)
            if message:
                return where or "body", message
        elif isinstance(item, int) and not isinstance(item, bool) and not INT64[0] <= item <= INT64[1]:
            return where or "body", "is out of range for a 64-bit integer"
    return None


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, key  # a key is stored too (JSON columns)
            yield from _walk(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}.{index}" if path else str(index))
    else:
        yield path, value


def _is_json(scope: Scope) -> bool:
    for name, raw in scope.get("headers", []):
        if name == b"content-type":
            media = raw.decode("latin-1").split(";")[0].strip().lower()
            return media == "application/json" or media.endswith("+json")
    return False


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        instance = scope.get("path", "")
        found = self._check_url(scope)
        if found is None and scope.get("method") in BODY_METHODS and _is_json(scope):
            body, too_large = await self._read_json_body(receive)
            if too_large:
                response = problem(
                    status=413,
                    title="Content too large",
                    detail=f"a JSON body may be at most {MAX_JSON_BODY} bytes",
                    instance=instance,
                    field="body",
                )
                await response(scope, receive, send)
                return
            found = self._check_json(body)
            receive = _replay(body, receive)
        if found is not None:
            field, message = found
            response = problem(
                status=422,
                title="Invalid input",
                kind="invalid-input",
                detail=f"{field}: {message}",
                instance=instance,
                field=field,
                errors=[{"field": field, "message": message}],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _check_url(scope: Scope) -> tuple[str, str] | None:
        message = _bad_text(scope.get("path", ""))
        if message:
            return "path", message
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            message = _bad_text(name)
            if message:
                return "query", f"a parameter name {message}"
            message = _bad_text(value)
            if message:
                return name, message
        return None

    @staticmethod
    async def _read_json_body(receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_JSON_BODY:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False

    @staticmethod
    def _check_json(body: bytes) -> tuple[str, str] | None:
        try:
            return find_unstorable(json.loads(body))
        except ValueError:
            return None  # not JSON at all: the endpoint's own validation says so
        except RecursionError:
            return "body", "is nested too deeply"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
