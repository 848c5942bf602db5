"""One operation as it runs: its steps and events on a page, and its live log as Server-Sent
Events on the console session, from the database (so any API node can serve it), resuming after
a reconnect from the browser's Last-Event-ID."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from orchestrator.operations import service as operations
from orchestrator.operations.models import FINISHED
from portal_api.console.session import PATH, ConsoleActorDep, ConsoleTokenDep
from portal_api.console.templating import render
from portal_api.deps import SessionDep
from portal_api.pagination import MAX_EVENT_ID
from portal_api.routers.operations import event_stream_response

router = APIRouter(prefix=PATH, include_in_schema=False)

EVENTS_ON_PAGE = 1000


@router.get("/operations/{operation_id}")
def operation_page(request: Request, operation_id: uuid.UUID, session: SessionDep, actor: ConsoleActorDep) -> Response:
    operation = operations.get(session=session, actor=actor, operation_id=operation_id)
    events = operations.events(session=session, operation_id=operation_id, limit=EVENTS_ON_PAGE)
    return render(
        request,
        "staff/operation.html",
        {
            "nav": "operations",
            "operation": operation,
            "steps": operation.step_list(),
            "events": events,
            "last_event_id": events[-1].id if events else 0,
            "finished": operation.status in FINISHED,
        },
    )


@router.get("/operations/{operation_id}/stream")
async def operation_stream(
    operation_id: uuid.UUID,
    actor: ConsoleActorDep,
    token: ConsoleTokenDep,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="Start after this event id")] = 0,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_EVENT_ID)] = None,
) -> StreamingResponse:
    # The page has shown the events up to `after`; a reconnecting EventSource says where it got to.
    start = last_event_id if last_event_id is not None else after
    return await event_stream_response(actor, operation_id, token, after=start, typed=False)
