"""The service catalogue."""

from typing import Any

from fastapi import APIRouter, Response
from pydantic import TypeAdapter

from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import Offering, OfferingPublic, OfferingSummary
from portal_api.deps import CatalogReaderDep

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])

_SUMMARIES = TypeAdapter(list[OfferingSummary])
# The listing is the same for every caller and changes only when the catalogue is loaded again:
# serialised once per loaded catalogue (keyed on the loaded mapping itself), not once per request.
_listing: tuple[dict[str, Offering], bytes] | None = None


def _listing_json() -> bytes:
    global _listing
    offerings = catalog.catalog()
    if _listing is None or _listing[0] is not offerings:
        body = _SUMMARIES.dump_json([OfferingSummary.of(o) for o in catalog.list_offerings()], by_alias=True)
        _listing = (offerings, body)
    return _listing[1]


@router.get("", summary="List the offerings", response_model=list[OfferingSummary])
async def list_offerings(actor: CatalogReaderDep) -> Response:
    return Response(_listing_json(), media_type="application/json")


@router.get("/{offering_id}", summary="One offering, with its plans and parameter schema")
async def get_offering(offering_id: str, actor: CatalogReaderDep) -> OfferingPublic:
    return OfferingPublic.of(catalog.get_offering(offering_id))


@router.get("/{offering_id}/schema", summary="The JSON Schema an order's parameters must match")
async def get_schema(offering_id: str, actor: CatalogReaderDep) -> dict[str, Any]:
    return catalog.get_offering(offering_id).parameters
