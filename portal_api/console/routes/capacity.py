"""The data centre's capacity as its DCIM reports it (the API's `GET /v1/dcim/capacity`), for
operators and admins; without a DCIM the page says so."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from orchestrator import policy
from orchestrator.dcim import capacity as dcim_capacity
from orchestrator.dcim import connection
from orchestrator.errors import Unavailable
from orchestrator.policy import Action
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import render

router = APIRouter(prefix=f"{PATH}/capacity", include_in_schema=False)


@router.get("")
def capacity(request: Request, actor: ConsoleActorDep, site: Annotated[str, Query(max_length=100)] = "") -> Response:
    policy.require(actor, Action.read_capacity)
    context = {"nav": "capacity", "site": site, "configured": False, "capacity": None, "unavailable": ""}
    dcim = connection.connect()
    if dcim is None:
        return render(request, "operator/capacity.html", context)
    context["configured"] = True
    try:
        context["capacity"] = dcim_capacity.capacity(dcim=dcim, site=site or None)
    except Unavailable as exc:
        # The DCIM did not answer: the page says so rather than failing whole.
        context["unavailable"] = exc.detail
        return render(request, "operator/capacity.html", context, status_code=503)
    return render(request, "operator/capacity.html", context)
