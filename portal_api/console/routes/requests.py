"""Orders: the list, one order's approval progress, and withdrawing an order still pending."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator import policy
from orchestrator.catalog import service as catalog
from orchestrator.requests import service as requests
from orchestrator.requests.models import RequestStatus
from portal_api.console.csrf import CsrfDep
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import render
from portal_api.deps import SessionDep, UowDep
from portal_api.pagination import OffsetQuery

router = APIRouter(prefix=PATH, include_in_schema=False)

PAGE_SIZE = 25


@router.get("/requests")
def request_list(
    request: Request,
    session: SessionDep,
    actor: ConsoleActorDep,
    status: Annotated[RequestStatus | None, Query()] = None,
    offset: OffsetQuery = 0,
) -> Response:
    rows, total = requests.list_requests(
        session=session,
        actor=actor,
        status=status,
        offering_id=None,
        ministry_id=None,
        awaiting_role=None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    return render(
        request,
        "staff/requests.html",
        {
            "nav": "requests",
            "rows": rows,
            "total": total,
            "limit": PAGE_SIZE,
            "offset": offset,
            "status": status,
            "statuses": list(RequestStatus),
            "page_url": f"{PATH}/requests" + (f"?status={status}" if status else ""),
        },
    )


@router.get("/requests/{request_id}")
def request_page(request: Request, request_id: uuid.UUID, session: SessionDep, actor: ConsoleActorDep) -> Response:
    order = requests.get(session=session, actor=actor, request_id=request_id)
    votes = requests.approvals_of(session=session, actor=actor, request_id=request_id)
    offering = catalog.catalog().get(order.offering_id)
    stages = [
        {
            "number": index + 1,
            "role": role,
            "votes": [v for v in votes if v.stage == index],
            "state": "done"
            if index < order.next_stage
            else "current"
            if index == order.next_stage and order.status == RequestStatus.pending_approval
            else "later",
        }
        for index, role in enumerate(order.approval_stages)
    ]
    return render(
        request,
        "staff/request.html",
        {
            "nav": "requests",
            "order": order,
            "offering_title": offering.title if offering else order.offering_id,
            "plan": offering.plan(order.plan) if offering else None,
            "stages": stages,
            "can_cancel": order.status == RequestStatus.pending_approval,
            "can_vote": order.status == RequestStatus.pending_approval
            and order.next_stage < len(order.approval_stages)
            and policy.allowed(
                actor, policy.stage_vote(order.approval_stages[order.next_stage]), ministry_id=order.ministry_id
            ),
        },
    )


@router.post("/requests/{request_id}/cancel")
def cancel(
    request_id: uuid.UUID,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    requests.cancel(session=uow.session, actor=actor, request_id=request_id, reason=reason)
    uow.commit()
    return RedirectResponse(f"{PATH}/requests/{request_id}", status_code=303)
