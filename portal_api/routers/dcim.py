"""The data centre's capacity, read from its DCIM: what is free per site, room and rack."""

from typing import Annotated

from fastapi import APIRouter, Query

from orchestrator.actors import Actor
from orchestrator.dcim import capacity as dcim_capacity
from orchestrator.policy import Action
from portal_api.deps import DcimDep, allowed_to

router = APIRouter(prefix="/v1/dcim", tags=["dcim"])

CapacityReaderDep = Annotated[Actor, allowed_to(Action.read_capacity)]


@router.get(
    "/capacity",
    summary="Free rack units, power and weight headroom per site, room and rack",
    description=(
        "As the DCIM reports it now (installed devices and reservations alike). Per rack: free units and the "
        "largest contiguous free run, weight headroom, per feed the available, allocated and headroom watts and "
        "utilisation; `near_limit` flags a rack whose units, any feed or weight reach 80 % of its budget. "
        "409 when no DCIM is configured."
    ),
)
def read_capacity(
    actor: CapacityReaderDep,
    dcim: DcimDep,
    site: Annotated[str | None, Query(max_length=100, description="Only this DCIM site, e.g. primary")] = None,
) -> dcim_capacity.Capacity:
    return dcim_capacity.capacity(dcim=dcim, site=site)
