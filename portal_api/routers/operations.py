"""Operations and their events, as JSON pages and as a live Server-Sent Events stream."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from orchestrator.auth.models import Actor
from orchestrator.config import get_settings
from orchestrator.database.core import session_scope
from orchestrator.operations import service as operations
from orchestrator.operations.models import EventPublic, OperationPublic, OperationStatus
from orchestrator.pipeline import actions
from portal_api.deps import ActorDep, SessionDep

router = APIRouter(prefix="/v1/operations", tags=["operations"])

FINISHED = frozenset({OperationStatus.succeeded, OperationStatus.failed, OperationStatus.cancelled})
KEEPALIVE_SECONDS = 15.0


@router.get("/{operation_id}", summary="One operation with its steps")
def get_operation(operation_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> OperationPublic:
    return OperationPublic.model_validate(operations.get(session=session, actor=actor, operation_id=operation_id))


@router.get("/{operation_id}/events", summary="The operation's events in order")
def list_events(
    operation_id: uuid.UUID,
    session: SessionDep,
    actor: ActorDep,
    after: Annotated[int, Query(ge=0, description="Only events with a larger id")] = 0,
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
def retry(operation_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> OperationPublic:
    return OperationPublic.model_validate(actions.retry(session=session, actor=actor, operation_id=operation_id))


@router.get(
    "/{operation_id}/stream",
    summary="Live progress as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: <type>`, `id`, JSON `data`; ends with `event: end`",
        }
    },
)
def stream(
    operation_id: uuid.UUID,
    session: SessionDep,
    actor: ActorDep,
    last_event_id: Annotated[
        int | None, Header(alias="Last-Event-ID", description="Resume after this event id")
    ] = None,
) -> StreamingResponse:
    operations.get(session=session, actor=actor, operation_id=operation_id)  # 404 before streaming
    return StreamingResponse(
        _event_stream(actor, operation_id, last_event_id or 0),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _poll(actor: Actor, operation_id: uuid.UUID, after: int) -> tuple[list[EventPublic], OperationStatus]:
    with session_scope() as session:
        operation = operations.get(session=session, actor=actor, operation_id=operation_id)
        events = [
            EventPublic.model_validate(e)
            for e in operations.events(session=session, operation_id=operation_id, after_id=after)
        ]
        return events, operation.status


async def _event_stream(actor: Actor, operation_id: uuid.UUID, after: int) -> AsyncIterator[str]:
    interval = get_settings().sse_poll_seconds
    idle = 0.0
    yield "retry: 2000\n\n"
    while True:
        events, status = await run_in_threadpool(_poll, actor, operation_id, after)
        for event in events:
            after = event.id
            yield f"id: {event.id}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"
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
