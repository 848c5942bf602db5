"""Orders: submit (idempotent), list, read, cancel, and the approval votes."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import BaseModel, Field, TypeAdapter

from orchestrator.actors import Role
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.requests import service as requests
from orchestrator.requests.models import (
    ApprovalCreate,
    ApprovalPublic,
    RequestCreate,
    RequestPublic,
    RequestStatus,
)
from portal_api.db_threads import run_db
from portal_api.deps import ActorDep, OrdererDep, SessionDep, UowDep, VoterDep
from portal_api.pagination import LimitQuery, OffsetQuery, Page

router = APIRouter(prefix="/v1/requests", tags=["requests"])

ORDER_EXAMPLE = {
    "offering_id": "web-hosting",
    "plan": "small",
    "parameters": {
        "name": "health-portal",
        "domain": "portal.health.gov.example",
        "admin_email": "webmaster@health.gov.example",
    },
    "justification": "Public portal for the vaccination campaign (memo MOH-2026-114)",
}


_REQUEST_JSON = TypeAdapter(RequestPublic)


class CancelBody(BaseModel):
    reason: str = Field(default="", max_length=2000)


@router.post(
    "",
    status_code=201,
    summary="Order a service",
    response_model=RequestPublic,
    responses={200: {"description": "Replay of an earlier order with the same Idempotency-Key"}},
)
async def submit(
    actor: OrdererDep,
    data: Annotated[RequestCreate, Body(openapi_examples={"web hosting": {"value": ORDER_EXAMPLE}})],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Retries with the same key return the original order.",
        ),
    ] = None,
) -> Response:
    def submit_and_commit() -> tuple[bool, uuid.UUID, bytes]:
        # The whole transaction and the serialisation in one worker thread: one hop off the event loop.
        with unit_of_work() as uow:
            result = requests.submit(uow=uow, actor=actor, data=data, idempotency_key=idempotency_key)
            return result.created, result.request.id, _REQUEST_JSON.dump_json(result.request, by_alias=True)

    created, request_id, body = await run_db(submit_and_commit)
    headers = {"Location": f"/v1/requests/{request_id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return Response(body, status_code=201 if created else 200, media_type="application/json", headers=headers)


@router.get("", summary="List orders visible to you")
def list_requests(
    session: SessionDep,
    actor: ActorDep,
    status: RequestStatus | None = None,
    offering_id: str | None = None,
    ministry_id: uuid.UUID | None = None,
    awaiting_role: Annotated[Role | None, Query(description="Only orders waiting for this role's vote")] = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> Page[RequestPublic]:
    rows, total = requests.list_requests(
        session=session,
        actor=actor,
        status=status,
        offering_id=offering_id,
        ministry_id=ministry_id,
        awaiting_role=awaiting_role,
        limit=limit,
        offset=offset,
    )
    return Page(items=[RequestPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{request_id}", summary="One order")
def get_request(request_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> RequestPublic:
    return RequestPublic.model_validate(requests.get(session=session, actor=actor, request_id=request_id))


@router.post("/{request_id}/cancel", summary="Withdraw an order that is not yet approved")
def cancel(request_id: uuid.UUID, uow: UowDep, actor: ActorDep, body: CancelBody | None = None) -> RequestPublic:
    request = requests.cancel(
        session=uow.session, actor=actor, request_id=request_id, reason=body.reason if body else ""
    )
    uow.commit()
    return RequestPublic.model_validate(request)


@router.get("/{request_id}/approvals", summary="The votes cast on an order")
def list_approvals(request_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> list[ApprovalPublic]:
    return [
        ApprovalPublic.model_validate(a)
        for a in requests.approvals_of(session=session, actor=actor, request_id=request_id)
    ]


@router.post("/{request_id}/approvals", summary="Vote on the order's current approval stage")
def vote(
    request_id: uuid.UUID,
    uow: UowDep,
    actor: VoterDep,
    data: Annotated[
        ApprovalCreate,
        Body(
            openapi_examples={
                "approve": {
                    "value": {"decision": "approve", "comment": "Within budget", "reference": "MOH/IT/2026/031"}
                }
            }
        ),
    ],
) -> RequestPublic:
    request = requests.vote(session=uow.session, actor=actor, request_id=request_id, data=data)
    uow.commit()
    return RequestPublic.model_validate(request)
