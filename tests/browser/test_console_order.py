"""The issue's whole story in headless Chromium, in Khmer and in English: a ministry's IT officer
signs in through single sign-on, orders web hosting from the generated form (first with a field
at fault, shown in place), the ministry head and an operator approve in their own browsers, the
officer watches the live log until the site is active and reveals its credentials once,
another ministry's pages are 404 and the officer's language choice follows them to another
browser; an operator retries a failed operation."""

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Console, Ministry, Person, axe_check, screenshot, sign_in, translate
from tests.browser.worker import BROKEN_SITE_PREFIX
from tests.conftest import Platform, Tenant, make_tenant, order_and_approve, order_body, web_params

pytestmark = pytest.mark.browser

LANGUAGE_BUTTONS = {"km": "ខ្មែរ", "en": "English"}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def api_get(console: Console, path: str, tenant: Tenant) -> dict[str, Any]:
    response = httpx.get(f"{console.url}{path}", headers=tenant.requester.headers, timeout=30)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def wait_for_status(console: Console, path: str, tenant: Tenant, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (found := api_get(console, path, tenant))["status"] != status:
        assert time.monotonic() < deadline, f"{path} is still {found['status']}, not {status}"
        time.sleep(0.3)
    return found


def operation_status(page: Page) -> Locator:
    """The operation's own status on its page (its steps have statuses too)."""
    return page.locator("#operation-status dl .badge").first


def vote(page: Page, request_id: str, lang: str, *, reference: str = "") -> None:
    """Approve an order from the approval queue, as the signed-in head or operator."""
    _ = translate(lang)
    page.goto("/console/approvals")
    page.locator(f"a[href='/console/approvals/{request_id}']").click()
    if reference:
        page.get_by_label(_("Official reference")).fill(reference)
    page.get_by_role("button", name=_("Approve"), exact=True).click()
    expect(page.get_by_role("status")).to_be_visible()


@pytest.mark.parametrize("lang", ["km", "en"])
def test_a_ministry_orders_web_hosting_and_watches_it_become_active(
    lang: str,
    open_browser: Callable[[str], Page],
    console_stack: Console,
    ministry: Ministry,
    operator: Person,
    foreign_order: dict[str, Any],
    tmp_path: Path,
) -> None:
    _ = translate(lang)
    tenant = ministry.tenant
    officer = open_browser(lang)
    sign_in(officer, ministry.requester)
    expect(officer.locator("html")).to_have_attribute("lang", lang)

    # The catalogue leads to web hosting's form, generated from its JSON Schema.
    officer.goto("/console/catalog")
    officer.locator("a[href='/console/catalog/web-hosting/order']").first.click()
    name, domain = officer.locator("[name='parameters.name']"), officer.locator("[name='parameters.domain']")
    name.fill("portal")
    officer.locator("[name='parameters.admin_email']").fill(f"web@{tenant.dns_suffix}")
    # Well formed, so the browser's hints pass it, but not a name this ministry owns: only the
    # orchestrator knows, and its answer must come back next to the field.
    domain.fill("portal.another-ministry.gov.example")
    officer.get_by_label(_("Justification")).fill("The ministry's new portal")
    submit = officer.get_by_role("button", name=_("Submit the order"))
    submit.click()
    expect(domain).to_have_attribute("aria-invalid", "true")
    error_id = (domain.get_attribute("aria-describedby") or "").split()[-1]
    expect(officer.locator(f"[id='{error_id}']")).to_be_visible()
    expect(name).not_to_have_attribute("aria-invalid", "true")
    expect(name).to_have_value("portal")  # what was typed is kept
    axe_check(officer)  # the form with its error is accessible too
    domain.evaluate("field => field.scrollIntoView({block: 'center'})")  # the field and its error in view
    screenshot(officer, f"order-error-{lang}", tmp_path)

    domain.fill(f"portal.{tenant.dns_suffix}")
    submit.click()
    officer.wait_for_url(re.compile(rf"/console/requests/{UUID}$"))
    request_id = officer.url.rsplit("/", 1)[-1]

    # The ministry head, then an operator, each in their own browser.
    head = open_browser(lang)
    sign_in(head, ministry.approver)
    vote(head, request_id, lang, reference="MOH/IT/2026/031")
    operations = open_browser(lang)
    sign_in(operations, operator)
    vote(operations, request_id, lang)

    # The officer opens the operation while it runs and sees its log grow without a reload.
    order = api_get(console_stack, f"/v1/requests/{request_id}", tenant)
    operation_id, service_id = order["operation_id"], order["service_id"]
    officer.goto(f"/console/operations/{operation_id}")
    assert officer.locator("#live-state[data-stream]").count() == 1, "the operation ended before its page opened"
    officer.evaluate("() => { window.tonleSamePage = true; }")
    events_at_load = officer.locator("#operation-log li").count()
    officer.wait_for_function(
        "n => window.tonleSamePage === true && document.querySelectorAll('#operation-log li').length > n",
        arg=events_at_load,
    )
    # At the end the page renders its status and steps again.
    expect(operation_status(officer)).to_have_text(_("succeeded"), timeout=60_000)
    screenshot(officer, f"operation-log-{lang}", tmp_path)

    officer.goto(f"/console/services/{service_id}")
    expect(officer.locator("main dl.facts .badge").first).to_have_text(_("active"))
    # Two tabs on the service page: the first shows the credentials, the second is refused.
    stale = officer.context.new_page()
    stale.goto(f"/console/services/{service_id}")
    officer.get_by_role("button", name=_("Show the credentials")).click()
    expect(officer.locator("section.credentials")).to_be_visible()
    screenshot(officer, f"credentials-{lang}", tmp_path)
    stale.get_by_role("button", name=_("Show the credentials")).click()
    expect(stale.get_by_role("alert").first).to_be_visible()
    expect(stale.locator("section.credentials")).to_have_count(0)
    officer.goto(f"/console/services/{service_id}")
    expect(officer.get_by_role("button", name=_("Show the credentials"))).to_have_count(0)

    # Another ministry's order, service and operation do not exist for this officer.
    for path in (
        f"/console/requests/{foreign_order['id']}",
        f"/console/services/{foreign_order['service_id']}",
        f"/console/operations/{foreign_order['operation_id']}",
        f"/console/approvals/{foreign_order['id']}",
    ):
        response = officer.goto(path)
        assert response is not None and response.status == 404, f"{path}: {response.status if response else None}"
    # And its actions: a form posted from this browser's session, with its own CSRF token.
    csrf_token = officer.locator("meta[name='csrf-token']").get_attribute("content") or ""
    reveal = officer.request.post(
        f"/console/services/{foreign_order['service_id']}/credentials", form={"csrf_token": csrf_token}
    )
    assert reveal.status == 404, reveal.status

    # The officer switches language; the choice stays with the user, not with this browser.
    other = "en" if lang == "km" else "km"
    officer.get_by_role("button", name=LANGUAGE_BUTTONS[other]).click()
    expect(officer.locator("html")).to_have_attribute("lang", other)
    elsewhere = open_browser(lang)  # a browser that asks for the first language
    sign_in(elsewhere, ministry.requester)
    expect(elsewhere.locator("html")).to_have_attribute("lang", other)


@pytest.fixture
def foreign_order(console_stack: Console, platform: Platform) -> dict[str, Any]:
    """Another ministry's approved web site (built or not, it is not ours to see)."""
    with httpx.Client(base_url=console_stack.url, timeout=30) as api:
        return order_and_approve(api, make_tenant(), platform)


@pytest.mark.parametrize("lang", ["km", "en"])
def test_an_operator_retries_a_failed_operation(
    lang: str,
    open_browser: Callable[[str], Page],
    console_stack: Console,
    ministry: Ministry,
    operator: Person,
    platform: Platform,
    tmp_path: Path,
) -> None:
    _ = translate(lang)
    tenant = ministry.tenant
    # The worker's configuration double fails the first run of a `broken*` site (a package
    # mirror that did not answer); the retry's run succeeds.
    parameters = {**web_params(tenant), "name": f"{BROKEN_SITE_PREFIX}-{lang}", "domain": f"broken.{tenant.dns_suffix}"}
    with httpx.Client(base_url=console_stack.url, timeout=30) as api:
        approved = order_and_approve(api, tenant, platform, order_body(tenant, parameters=parameters))
    operation_id = approved["operation_id"]
    wait_for_status(console_stack, f"/v1/operations/{operation_id}", tenant, "failed")

    page = open_browser(lang)
    sign_in(page, operator)
    page.goto(f"/console/operations?status=failed&ministry={tenant.ministry_id}")
    row = page.get_by_role("row").filter(has=page.locator(f"a[href='/console/operations/{operation_id}']"))
    expect(row).to_contain_text(_("failed"))
    expect(row).to_contain_text("web : install nginx")
    screenshot(page, f"operations-{lang}", tmp_path)
    row.get_by_role("button", name=_("Retry")).click()
    page.wait_for_url(f"**/console/operations/{operation_id}")
    retried = wait_for_status(console_stack, f"/v1/operations/{operation_id}", tenant, "succeeded")
    assert retried["attempts"] == 2
    expect(operation_status(page)).to_have_text(_("succeeded"), timeout=30_000)
    wait_for_status(console_stack, f"/v1/services/{approved['service_id']}", tenant, "active")
