"""The approval queue: orders waiting for the caller's vote, and the vote itself (approve, or
reject with a reason), through the same service the API's `POST /v1/requests/{id}/approvals` uses."""

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from orchestrator import policy
from orchestrator.actors import Actor, Role
from orchestrator.auth import service as auth
from orchestrator.errors import NotFound
from orchestrator.ministry import service as ministries
from orchestrator.requests import service as requests
from orchestrator.requests.models import ApprovalCreate, Decision, RequestStatus
from orchestrator.requests.models import Request as Order
from portal_api.console.csrf import CsrfDep
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import render
from portal_api.deps import SessionDep, UowDep
from portal_api.pagination import OffsetQuery

router = APIRouter(prefix=f"{PATH}/approvals", include_in_schema=False)

PAGE_SIZE = 25
REASON_REQUIRED = "Please give the reason for the rejection."


def _voting_role(actor: Actor) -> Role | None:
    """The approval stage the actor votes on, if any (ministry approver, operator or admin)."""
    if actor.role is None or Role(actor.role) not in policy.STAGE_VOTES:
        return None
    role = Role(actor.role)
    return role if policy.allowed(actor, policy.stage_vote(role)) else None


def _awaits(actor: Actor, order: Order) -> bool:
    """Whether the order's current stage waits for this actor's vote."""
    return (
        order.status == RequestStatus.pending_approval
        and order.next_stage < len(order.approval_stages)
        and order.approval_stages[order.next_stage] == _voting_role(actor)
    )


def _described(session: Session, orders: Sequence[Order]) -> list[dict[str, Any]]:
    """Each order with its ministry's and requester's names, for the page."""
    names: dict[uuid.UUID, str] = {}
    rows = []
    for order in orders:
        if order.ministry_id not in names:
            names[order.ministry_id] = ministries.get(session=session, ministry_id=order.ministry_id).name
        requester = ""
        if order.created_by is not None:
            try:
                requester = auth.get_user(session=session, user_id=order.created_by).username
            except NotFound:
                requester = ""
        rows.append({"order": order, "ministry": names[order.ministry_id], "requester": requester})
    return rows


@router.get("")
def queue(request: Request, session: SessionDep, actor: ConsoleActorDep, offset: OffsetQuery = 0) -> Response:
    role = _voting_role(actor)
    orders: Sequence[Order] = []
    total = 0
    if role is not None:
        # A ministry approver's list holds only its own ministry's orders: the service decides that.
        orders, total = requests.list_requests(
            session=session,
            actor=actor,
            status=RequestStatus.pending_approval,
            awaiting_role=role,
            limit=PAGE_SIZE,
            offset=offset,
        )
    return render(
        request,
        "operator/approvals.html",
        {
            "nav": "approvals",
            "can_vote": role is not None,
            "rows": _described(session, orders),
            "total": total,
            "limit": PAGE_SIZE,
            "offset": offset,
        },
    )


def _vote_page(
    request: Request,
    session: Session,
    actor: Actor,
    order: Order,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "operator/vote.html",
        {
            "nav": "approvals",
            "row": _described(session, [order])[0],
            "votes": requests.approvals_of(session=session, actor=actor, request_id=order.id),
            "awaits_me": _awaits(actor, order),
            "errors": errors or {},
            "form": form or {},
            "voted": request.query_params.get("voted") in ("approve", "reject"),
        },
        status_code=status_code,
    )


@router.get("/{request_id}")
def vote_form(request_id: uuid.UUID, request: Request, session: SessionDep, actor: ConsoleActorDep) -> Response:
    order = requests.get(session=session, actor=actor, request_id=request_id)  # another ministry's: 404
    return _vote_page(request, session, actor, order)


@router.post("/{request_id}")
def vote(
    request_id: uuid.UUID,
    request: Request,
    uow: UowDep,
    actor: ConsoleActorDep,
    _: CsrfDep,
    decision: Annotated[Decision, Form()],
    comment: Annotated[str, Form(max_length=2000)] = "",
    reference: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    comment, reference = comment.strip(), reference.strip()
    if decision == Decision.reject and not comment:
        # A rejection without its reason tells the requester nothing: refused here, in place.
        order = requests.get(session=uow.session, actor=actor, request_id=request_id)
        return _vote_page(
            request,
            uow.session,
            actor,
            order,
            errors={"comment": REASON_REQUIRED},
            form={"comment": comment, "reference": reference},
            status_code=422,
        )
    requests.vote(
        session=uow.session,
        actor=actor,
        request_id=request_id,
        data=ApprovalCreate(decision=decision, comment=comment, reference=reference),
    )
    uow.commit()
    return RedirectResponse(f"{PATH}/approvals/{request_id}?voted={decision.value}", status_code=303)
