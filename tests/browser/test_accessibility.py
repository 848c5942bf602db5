"""axe-core on the console's key pages, in Khmer and in English: no serious or critical
violations. The same visits take the README's screenshots (docs/console/)."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console, Ministry, Person, axe_check, screenshot, sign_in
from tests.conftest import Platform, order_and_approve, order_body, web_params

pytestmark = pytest.mark.browser


def visit(page: Page, path: str, name: str, lang: str, tmp_path: Path) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path}: {response.status if response else None}"
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("main")).to_be_visible()
    axe_check(page)
    screenshot(page, f"{name}-{lang}", tmp_path)


def active_service_and_pending_request(console: Console, ministry: Ministry, platform: Platform) -> tuple[str, str]:
    """Over the API (the story test does it in the console): a web site ordered, approved and
    built by the worker, and a second order waiting for the ministry head; the service's id and
    the waiting request's."""
    tenant = ministry.tenant
    with httpx.Client(base_url=console.url, timeout=30) as api:
        approved = order_and_approve(api, tenant, platform)
        parameters = {**web_params(tenant), "name": "archive", "domain": f"archive.{tenant.dns_suffix}"}
        waiting = api.post(
            "/v1/requests", json=order_body(tenant, parameters=parameters), headers=tenant.requester.headers
        )
        assert waiting.status_code == 201, waiting.text
        service_url = f"/v1/services/{approved['service_id']}"
        deadline = time.monotonic() + 60
        while api.get(service_url, headers=tenant.requester.headers).json()["status"] != "active":
            assert time.monotonic() < deadline, "the worker did not build the service"
            time.sleep(0.3)
    return str(approved["service_id"]), str(waiting.json()["id"])


@pytest.mark.parametrize("lang", ["km", "en"])
def test_key_pages_have_no_serious_accessibility_violations(
    lang: str,
    open_browser: Callable[[str], Page],
    console_stack: Console,
    ministry: Ministry,
    operator: Person,
    platform: Platform,
    tmp_path: Path,
) -> None:
    service_id, request_id = active_service_and_pending_request(console_stack, ministry, platform)

    requester = open_browser(lang)
    visit(requester, "/console/login", "login", lang, tmp_path)
    sign_in(requester, ministry.requester)
    visit(requester, "/console/catalog", "catalogue", lang, tmp_path)
    visit(requester, "/console/catalog/web-hosting/order", "order-form", lang, tmp_path)
    visit(requester, "/console/requests", "requests", lang, tmp_path)
    visit(requester, f"/console/requests/{request_id}", "request", lang, tmp_path)
    visit(requester, "/console/services", "services", lang, tmp_path)
    visit(requester, f"/console/services/{service_id}", "service", lang, tmp_path)

    head = open_browser(lang)
    sign_in(head, ministry.approver)
    visit(head, "/console/approvals", "approvals", lang, tmp_path)

    operations = open_browser(lang)
    sign_in(operations, operator)
    visit(operations, "/console/approvals", "approvals-operator", lang, tmp_path)
    visit(operations, "/console/operations", "operations", lang, tmp_path)
