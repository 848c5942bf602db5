"""Offerings the catalogue marks not orderable (they name parts that do not exist yet, see
tests/unit/test_catalog_consistency.py) are listed as such, and a valid order for one is
refused with 409 naming the offering, reserving and queuing nothing.
"""

from typing import Any

import httpx
import pytest

from tests.conftest import Tenant

pytestmark = pytest.mark.integration


def valid_order(tenant: Tenant, offering_id: str) -> dict[str, Any]:
    """The catalogue's own example: an order the API would accept if the offering could be ordered."""
    parameters: dict[str, dict[str, Any]] = {
        "colocation": {
            "name": "land-registry",
            "contact_name": "Sokha Chan",
            "contact_phone": "+855 23 000 000",
            "devices": [{"model": "Dell PowerEdge R650", "rack_units": 1, "power_watts": 700}],
        },
    }
    plans = {"colocation": "quarter-rack"}
    return {"offering_id": offering_id, "plan": plans[offering_id], "parameters": parameters[offering_id]}


def test_the_listing_says_which_offerings_can_be_ordered(client: httpx.Client, tenant: Tenant) -> None:
    listing = client.get("/v1/catalog", headers=tenant.requester.headers).json()
    flags = {o["id"]: (o["orderable"], bool(o["not_orderable_reason"])) for o in listing}
    assert flags == {
        "cms": (True, False),
        "web-hosting": (True, False),
        "colocation": (False, True),
        "dr-backup": (True, False),
        "email": (True, False),
    }


@pytest.mark.parametrize("offering_id", ["colocation"])
def test_an_order_for_a_not_orderable_offering_is_refused(
    client: httpx.Client, tenant: Tenant, offering_id: str
) -> None:
    before = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
    response = client.post("/v1/requests", json=valid_order(tenant, offering_id), headers=tenant.requester.headers)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "offering_id" and problem["offering_id"] == offering_id, problem
    assert problem["detail"].startswith(f"offering '{offering_id}' cannot be ordered yet: "), problem
    after = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
    assert after["quota_used"] == before["quota_used"], "nothing is reserved"
    assert client.get("/v1/requests", headers=tenant.requester.headers).json()["total"] == 0, "nothing is queued"
