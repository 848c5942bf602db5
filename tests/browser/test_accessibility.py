"""axe-core on the console's key pages, in Khmer and in English: no serious or critical
violations. The same visits take most of the README's screenshots (docs/console/)."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console, Ministry, Person, axe_check, fonts_rendering, screenshot, sign_in
from tests.conftest import Platform, order_and_approve, order_body, web_params

pytestmark = pytest.mark.browser

KHMER_FONT = "Noto Sans Khmer"  # portal_api/console/static/vendor, declared in console.css


def visit(page: Page, path: str, lang: str, tmp_path: Path, *, shot: str | None = None) -> None:
    """Open a page, check it with axe-core; `shot` names the README's screenshot of it."""
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path}: {response.status if response else None}"
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("main")).to_be_visible()
    axe_check(page)
    if lang == "km":
        # Khmer comes from the font the console ships, not from whatever the machine has.
        fonts = fonts_rendering(page, "main h1")
        assert fonts.get(KHMER_FONT, 0) > 0, f"{path}: the heading is drawn with {fonts}"
    if shot:
        screenshot(page, f"{shot}-{lang}", tmp_path)


def approved_and_pending_orders(console: Console, ministry: Ministry, platform: Platform) -> dict[str, str]:
    """Over the API (the story test does it in the console): a web site ordered and approved,
    which the worker builds meanwhile, and a second order waiting for the ministry head; ids."""
    tenant = ministry.tenant
    with httpx.Client(base_url=console.url, timeout=30) as api:
        approved = order_and_approve(api, tenant, platform)
        parameters = {**web_params(tenant), "name": "archive", "domain": f"archive.{tenant.dns_suffix}"}
        waiting = api.post(
            "/v1/requests", json=order_body(tenant, parameters=parameters), headers=tenant.requester.headers
        )
        assert waiting.status_code == 201, waiting.text
    return {
        "service": str(approved["service_id"]),
        "operation": str(approved["operation_id"]),
        "waiting_request": str(waiting.json()["id"]),
    }


def wait_until_active(console: Console, ministry: Ministry, service_id: str) -> None:
    url = f"{console.url}/v1/services/{service_id}"
    deadline = time.monotonic() + 60
    while httpx.get(url, headers=ministry.tenant.requester.headers, timeout=30).json()["status"] != "active":
        assert time.monotonic() < deadline, "the worker did not build the service"
        time.sleep(0.3)


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
    ids = approved_and_pending_orders(console_stack, ministry, platform)

    requester = open_browser(lang)
    visit(requester, "/console/login", lang, tmp_path, shot="login")
    sign_in(requester, ministry.requester)
    visit(requester, "/console/", lang, tmp_path)
    visit(requester, "/console/catalog", lang, tmp_path, shot="catalogue")
    visit(requester, "/console/catalog/web-hosting/order", lang, tmp_path)
    visit(requester, "/console/requests", lang, tmp_path, shot="requests")
    visit(requester, f"/console/requests/{ids['waiting_request']}", lang, tmp_path)
    visit(requester, "/console/services", lang, tmp_path)
    wait_until_active(console_stack, ministry, ids["service"])
    visit(requester, f"/console/services/{ids['service']}", lang, tmp_path, shot="service")
    visit(requester, f"/console/operations/{ids['operation']}", lang, tmp_path)
    visit(requester, "/console/quota", lang, tmp_path)
    visit(requester, "/console/showback", lang, tmp_path)

    head = open_browser(lang)
    sign_in(head, ministry.approver)
    visit(head, "/console/approvals", lang, tmp_path)
    visit(head, f"/console/approvals/{ids['waiting_request']}", lang, tmp_path, shot="vote")

    operations = open_browser(lang)
    sign_in(operations, operator)
    visit(operations, "/console/approvals", lang, tmp_path)
    visit(operations, "/console/operations", lang, tmp_path)
    visit(operations, "/console/drills", lang, tmp_path)
    visit(operations, "/console/capacity", lang, tmp_path)
