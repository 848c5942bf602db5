"""An offering the catalogue marks not orderable (it names parts that do not exist yet, see
tests/unit/test_catalog_consistency.py) is listed as such, and a valid order for it is refused
with 409 naming the offering, reserving and queuing nothing.

Every offering of the real catalogue is orderable now; the refusal is shown on a copy of it in
which web hosting is marked not orderable, served by an API of its own on the same database.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from orchestrator.config import PROJECT_ROOT
from tests.conftest import Database, Tenant, order_body, serving_api

pytestmark = pytest.mark.integration

REASON = "its playbooks are being rebuilt"


@pytest.fixture(scope="module")
def withdrawn_catalog_api(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    catalog = tmp_path_factory.mktemp("catalog")
    for path in (PROJECT_ROOT / "catalog").glob("*.yaml"):
        shutil.copy(path, catalog / path.name)
    web = catalog / "web-hosting.yaml"
    offering = yaml.safe_load(web.read_text())
    web.write_text(yaml.safe_dump({**offering, "orderable": False, "not_orderable_reason": REASON}))
    with serving_api(database.url, Path(tmp_path_factory.mktemp("api")), TONLE_CATALOG_DIR=str(catalog)) as url:
        yield url


def test_the_listing_says_which_offerings_can_be_ordered(
    client: httpx.Client, tenant: Tenant, withdrawn_catalog_api: str
) -> None:
    listing = client.get("/v1/catalog", headers=tenant.requester.headers).json()
    flags = {o["id"]: (o["orderable"], bool(o["not_orderable_reason"])) for o in listing}
    assert flags == {
        "cms": (True, False),
        "web-hosting": (True, False),
        "colocation": (True, False),
        "dr-backup": (True, False),
        "email": (True, False),
    }
    withdrawn = httpx.get(f"{withdrawn_catalog_api}/v1/catalog", headers=tenant.requester.headers).json()
    web = next(o for o in withdrawn if o["id"] == "web-hosting")
    assert (web["orderable"], web["not_orderable_reason"]) == (False, REASON)


def test_an_order_for_a_not_orderable_offering_is_refused(tenant: Tenant, withdrawn_catalog_api: str) -> None:
    with httpx.Client(base_url=withdrawn_catalog_api, timeout=30) as client:
        before = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
        response = client.post("/v1/requests", json=order_body(tenant), headers=tenant.requester.headers)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["field"] == "offering_id" and problem["offering_id"] == "web-hosting", problem
        assert problem["detail"] == f"offering 'web-hosting' cannot be ordered yet: {REASON}", problem
        after = client.get(f"/v1/ministries/{tenant.ministry_id}", headers=tenant.requester.headers).json()
        assert after["quota_used"] == before["quota_used"], "nothing is reserved"
        assert client.get("/v1/requests", headers=tenant.requester.headers).json()["total"] == 0, "nothing is queued"
