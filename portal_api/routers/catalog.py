"""The service catalogue."""

from typing import Any

from fastapi import APIRouter

from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import OfferingPublic, OfferingSummary
from portal_api.deps import CatalogReaderDep

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])


@router.get("", summary="List the offerings")
def list_offerings(actor: CatalogReaderDep) -> list[OfferingSummary]:
    return [OfferingSummary.of(o) for o in catalog.list_offerings()]


@router.get("/{offering_id}", summary="One offering, with its plans and parameter schema")
def get_offering(offering_id: str, actor: CatalogReaderDep) -> OfferingPublic:
    return OfferingPublic.of(catalog.get_offering(offering_id))


@router.get("/{offering_id}/schema", summary="The JSON Schema an order's parameters must match")
def get_schema(offering_id: str, actor: CatalogReaderDep) -> dict[str, Any]:
    return catalog.get_offering(offering_id).parameters
