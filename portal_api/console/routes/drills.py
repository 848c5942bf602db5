"""Disaster-recovery drills: the signed reports of drills, failovers and failbacks the caller may
read, newest first, the latest drill campaigns, and the services overdue a drill (the API's
`/v1/dr/overdue`)."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from orchestrator.dr import campaigns, overdue
from orchestrator.dr import reports as dr_reports
from orchestrator.errors import InvalidInput
from orchestrator.ministry import service as ministries
from orchestrator.services import service as services
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import render
from portal_api.deps import SessionDep
from portal_api.pagination import OffsetQuery

router = APIRouter(prefix=f"{PATH}/drills", include_in_schema=False)

PAGE_SIZE = 25
KINDS = sorted(dr_reports.REPORTED_KINDS)
CAMPAIGNS_SHOWN = 5


@router.get("")
def drills(
    request: Request,
    session: SessionDep,
    actor: ConsoleActorDep,
    kind: Annotated[str, Query(max_length=32)] = "",
    offset: OffsetQuery = 0,
) -> Response:
    if kind and kind not in KINDS:
        raise InvalidInput(f"unknown kind '{kind}'", field="kind")
    found, total = dr_reports.recent(session=session, actor=actor, kind=kind or None, limit=PAGE_SIZE, offset=offset)
    names: dict[Any, str] = {}
    rows = []
    for report in found:
        if report.service_id not in names:
            names[report.service_id] = services.get(session=session, actor=actor, service_id=report.service_id).name
        body: dict[str, Any] = json.loads(report.body)
        rows.append({"report": report, "body": body, "service": names[report.service_id]})
    late = overdue.list_overdue(session=session, actor=actor)
    recent_campaigns = campaigns.recent(session=session, actor=actor, limit=CAMPAIGNS_SHOWN)
    ministry_names = {
        c.ministry_id: ministries.get(session=session, ministry_id=c.ministry_id).name
        for c in recent_campaigns
        if c.ministry_id is not None
    }
    for entry in late:
        names.setdefault(entry.service_id, entry.service_name)
    return render(
        request,
        "operator/drills.html",
        {
            "nav": "drills",
            "rows": rows,
            "total": total,
            "limit": PAGE_SIZE,
            "offset": offset,
            "kind": kind,
            "kinds": KINDS,
            "overdue": late,
            "campaigns": recent_campaigns,
            "ministry_names": ministry_names,
            "page_url": f"{PATH}/drills" + (f"?kind={kind}" if kind else ""),
        },
    )
