"""The ministry's quota: what its services and pending orders hold against its limits."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator import policy, quota
from orchestrator.ministry import service as ministries
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import render
from portal_api.deps import SessionDep

router = APIRouter(prefix=PATH, include_in_schema=False)


@router.get("/quota")
def quota_page(request: Request, session: SessionDep, actor: ConsoleActorDep) -> Response:
    if policy.sees_all_ministries(actor):
        shown = list(ministries.list_all(session=session))
    elif actor.ministry_id is not None:
        shown = [ministries.get(session=session, ministry_id=actor.ministry_id)]
    else:
        shown = []
    tables = [
        {
            "ministry": ministry,
            "rows": [
                {
                    "resource": name,
                    "used": quota.normalise(ministry.quota_used)[name],
                    "limit": quota.normalise(ministry.quota_limits)[name],
                }
                for name in quota.RESOURCES
            ],
        }
        for ministry in shown
    ]
    return render(request, "staff/quota.html", {"nav": "quota", "tables": tables})
