"""The console's first page: what waits for the signed-in person."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator import policy
from orchestrator.actors import Role
from orchestrator.policy import Action
from orchestrator.requests import service as requests
from orchestrator.requests.models import RequestStatus
from orchestrator.services import service as services
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import render
from portal_api.deps import SessionDep

router = APIRouter(prefix=PATH, include_in_schema=False)


@router.get("")
def bare_console() -> Response:
    return RedirectResponse(f"{PATH}/", status_code=308)


@router.get("/")
def home(request: Request, session: SessionDep, actor: ConsoleActorDep) -> Response:
    votes = [action for action in policy.STAGE_VOTES.values() if policy.allowed(actor, action)]
    awaiting_me = 0
    if votes and actor.role is not None:
        _, awaiting_me = requests.list_requests(
            session=session,
            actor=actor,
            status=RequestStatus.pending_approval,
            offering_id=None,
            ministry_id=None,
            awaiting_role=Role(actor.role),
            limit=1,
            offset=0,
        )
    _, my_pending = requests.list_requests(
        session=session,
        actor=actor,
        status=RequestStatus.pending_approval,
        offering_id=None,
        ministry_id=None,
        awaiting_role=None,
        limit=1,
        offset=0,
    )
    return render(
        request,
        "home.html",
        {
            "nav": "home",
            "awaiting_me": awaiting_me,
            "pending": my_pending,
            "can_order": policy.allowed(actor, Action.order),
            "services_count": services.list_services(session=session, actor=actor, limit=1)[1],
        },
    )
