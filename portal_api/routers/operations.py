"""Operations and their events, as JSON pages and as a live Server-Sent Events stream."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Header, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from orchestrator.actors import Actor
from orchestrator.auth import service as auth
from orchestrator.config import get_settings
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import InvalidInput
from orchestrator.operations import service as operations
from orchestrator.operations.models import FINISHED, EventPublic, OperationPublic, OperationStatus
from orchestrator.workflows import commands
from portal_api.deps import ActorDep, BearerDep, BriefActorDep, SessionDep, UowDep
from portal_api.pagination import MAX_EVENT_ID

router = APIRouter(prefix="/v1/operations", tags=["operations"])

MAX_SIGNAL_BYTES = 16 * 1024
KEEPALIVE_SECONDS = 15.0


@router.get("/{operation_id}", summary="One operation with its steps")
def get_operation(operation_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> OperationPublic:
    return OperationPublic.model_validate(operations.get(session=session, actor=actor, operation_id=operation_id))


@router.get("/{operation_id}/events", summary="The operation's events in order")
def list_events(
    operation_id: uuid.UUID,
    session: SessionDep,
    actor: ActorDep,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="Only events with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[EventPublic]:
    operations.get(session=session, actor=actor, operation_id=operation_id)
    return [
        EventPublic.model_validate(e)
        for e in operations.events(session=session, operation_id=operation_id, after_id=after, limit=limit)
    ]


@router.post(
    "/{operation_id}/retry",
    status_code=202,
    summary="Retry a failed operation from its failed step (operators and admins)",
    responses={403: {"description": "Not an operator or admin"}, 409: {"description": "The operation has not failed"}},
)
def retry(operation_id: uuid.UUID, uow: UowDep, actor: ActorDep) -> OperationPublic:
    operation = commands.retry(session=uow.session, actor=actor, operation_id=operation_id)
    uow.commit()
    return OperationPublic.model_validate(operation)


@router.post(
    "/{operation_id}/signals/{name}",
    status_code=202,
    summary="Tell a waiting operation what it waits for (a server installed, a failover approved)",
    responses={
        409: {"description": "The operation is not waiting for this signal"},
        422: {"description": "The operation's workflow takes no signal of that name"},
    },
)
def send_signal(
    operation_id: uuid.UUID,
    name: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
    uow: UowDep,
    actor: ActorDep,
    payload: Annotated[dict[str, Any], Body(description="What the waiting step is told (a JSON object)")] = {},  # noqa: B006
) -> OperationPublic:
    if len(json.dumps(payload)) > MAX_SIGNAL_BYTES:
        raise InvalidInput(f"a signal's payload may be at most {MAX_SIGNAL_BYTES} bytes of JSON", field="body")
    operation = commands.signal(session=uow.session, actor=actor, operation_id=operation_id, name=name, payload=payload)
    uow.commit()
    return OperationPublic.model_validate(operation)


@router.get(
    "/{operation_id}/stream",
    summary="Live progress as Server-Sent Events",
    description=(
        "Ends with `event: end` when the operation finishes, or `event: unauthorized` when the token is revoked or "
        "expires. A token holds at most `TONLE_SSE_STREAMS_PER_TOKEN` streams at once (429 beyond that)."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: <type>`, `id`, JSON `data`; ends with `event: end`",
        },
        429: {"description": "This token already holds as many streams as it may"},
    },
)
async def stream(
    operation_id: uuid.UUID,
    actor: BriefActorDep,
    credentials: BearerDep,
    last_event_id: Annotated[
        int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_EVENT_ID, description="Resume after this event id")
    ] = None,
) -> StreamingResponse:
    # Every database use of a stream is a short session of its own: a stream lasts as long as
    # its operation, and holding a pooled connection for that long lets a few dozen clients
    # starve the API.
    assert credentials is not None  # BriefActorDep has refused requests without a token
    return await event_stream_response(actor, operation_id, credentials.credentials, after=last_event_id or 0)


async def event_stream_response(
    actor: Actor, operation_id: uuid.UUID, token: str, *, after: int, typed: bool = True
) -> StreamingResponse:
    """The operation's events after `after`, live, on a stream lease of `token` (an API token or a
    console session's). `typed=False` sends events as plain messages (their type is in the data),
    for a browser's EventSource, which only hears the event names it subscribed to."""
    lease = await run_in_threadpool(_open, actor, operation_id, token)
    return StreamingResponse(
        _event_stream(actor, operation_id, after, lease, typed=typed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@dataclass(frozen=True)
class _Lease:
    id: uuid.UUID
    token_id: uuid.UUID


def _open(actor: Actor, operation_id: uuid.UUID, token: str) -> _Lease:
    with unit_of_work() as uow:
        operations.get(session=uow.session, actor=actor, operation_id=operation_id)  # 404 before streaming
        found = auth.authenticate_token(session=uow.session, token=token)
        if found is None:
            raise HTTPException(401, "the token is unknown, expired or revoked", headers={"WWW-Authenticate": "Bearer"})
        token_id = found[1].id
        lease_id = auth.open_stream_lease(session=uow.session, token_id=token_id, operation_id=operation_id)
        uow.commit()
        return _Lease(id=lease_id, token_id=token_id)


def _poll(
    actor: Actor, operation_id: uuid.UUID, after: int, lease: _Lease
) -> tuple[list[EventPublic], OperationStatus | None]:
    """New events and the operation's status; no status when the token no longer holds."""
    with unit_of_work() as uow:
        if not auth.token_still_valid(session=uow.session, token_id=lease.token_id):
            return [], None
        auth.renew_stream_lease(session=uow.session, lease_id=lease.id)
        operation = operations.get(session=uow.session, actor=actor, operation_id=operation_id)
        events = [
            EventPublic.model_validate(e)
            for e in operations.events(session=uow.session, operation_id=operation_id, after_id=after)
        ]
        status = operation.status
        uow.commit()
        return events, status


def _close(lease: _Lease) -> None:
    with unit_of_work() as uow:
        auth.close_stream_lease(session=uow.session, lease_id=lease.id)
        uow.commit()


async def _event_stream(
    actor: Actor, operation_id: uuid.UUID, after: int, lease: _Lease, *, typed: bool = True
) -> AsyncIterator[str]:
    interval = get_settings().sse_poll_seconds
    idle = 0.0
    try:
        yield "retry: 2000\n\n"
        while True:
            events, status = await run_in_threadpool(_poll, actor, operation_id, after, lease)
            if status is None:
                yield f"event: unauthorized\ndata: {json.dumps({'detail': 'the token was revoked or expired'})}\n\n"
                return
            for event in events:
                after = event.id
                name = f"event: {event.type}\n" if typed else ""
                yield f"id: {event.id}\n{name}data: {event.model_dump_json()}\n\n"
            if events:
                idle = 0.0
            elif status in FINISHED:
                yield f"event: end\ndata: {json.dumps({'status': str(status)})}\n\n"
                return
            else:
                idle += interval
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield ": keep-alive\n\n"
            await asyncio.sleep(interval)
    finally:
        # The client may have gone (the task is being cancelled): give the lease back regardless.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_close, lease)
