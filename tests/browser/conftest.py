"""The browser tier: Debian's Chromium, driven by Playwright, against the whole console.

One session-wide stack: the real OpenID provider (tests/support/oidc_provider) and an API process
signing in through it, a real worker process (tests/browser/worker.py: the no-op adapters, each
engine call taking TONLE_NOOP_STEP_SECONDS so the live log has something to show), and one
headless Chromium. Each test gets fresh browser contexts: one per person signed in, each with its
language (km-KH or en-US) and a 1280x800 window.

Screenshots are taken on every run (they exercise rendering); they replace docs/console/*.png
only with TONLE_UPDATE_SCREENSHOTS=1 (`make screenshots`), so a test run leaves git clean.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, expect, sync_playwright

from portal_api.console import i18n
from tests.conftest import Database, Tenant, make_tenant
from tests.support.oidc import OidcProvider, SsoApi, serving_sso_api

CHROMIUM = Path("/usr/bin/chromium")
AXE_SCRIPT = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
REPO = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = REPO / "docs" / "console"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
LOCALES = {"km": "km-KH", "en": "en-US"}
# Each engine call of the worker's no-op engine takes this long: an order spends a few seconds
# running, long enough for the page to show it live, short enough for the tier's time budget.
STEP_SECONDS = "2.0"
# Failures axe-core rates this high fail the test; "moderate" and "minor" are reported only.
BLOCKING_IMPACTS = ("serious", "critical")

expect.set_options(timeout=15_000)


@dataclass(frozen=True)
class Console:
    """The running stack: the API's URL and the OpenID provider it trusts."""

    url: str
    provider: OidcProvider


def _wait_for_worker(worker: subprocess.Popen[bytes], log_file: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while "starting: concurrency" not in log_file.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"the worker did not start; its log:\n{log_file.read_text()[-3000:]}")
        time.sleep(0.1)


# Package-wide, not session-wide: the worker would take other tiers' jobs with its adapters.
@pytest.fixture(scope="package")
def console_stack(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    started = time.monotonic()
    workdir = tmp_path_factory.mktemp("browser")
    log_file = workdir / "worker.log"
    with log_file.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.worker"],
            cwd=REPO,
            env={
                **os.environ,
                "TONLE_DATABASE_URL": database.url,
                "TONLE_NOOP_STEP_SECONDS": STEP_SECONDS,
                "TONLE_LOG_LEVEL": "INFO",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        sso: SsoApi
        # The worker warms up while the API and the provider start.
        with serving_sso_api(database, workdir) as sso:
            _wait_for_worker(worker, log_file)
            print(f"\nbrowser tier: API, OpenID provider and worker ready in {time.monotonic() - started:.1f} s")
            yield Console(url=sso.url, provider=sso.provider)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make install` (it installs chromium and fonts-khmeros)")
    # Playwright's own browser build is a download from its CDN at install time; the Debian one
    # is what this machine has. Root may not use Chromium's sandbox.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def open_browser(chromium: Browser, console_stack: Console) -> Iterator[Callable[[str], Page]]:
    """A fresh browser (context) in a language, "km" or "en": its first page, at no URL yet."""
    contexts: list[BrowserContext] = []

    def open_in(lang: str) -> Page:
        context = chromium.new_context(locale=LOCALES[lang], viewport=VIEWPORT, base_url=console_stack.url)
        contexts.append(context)
        return context.new_page()

    yield open_in
    for context in contexts:
        context.close()


@dataclass(frozen=True)
class Person:
    """Someone with an account at the OpenID provider, signing in with its id (sub)."""

    account_id: str
    username: str
    role: str


@dataclass(frozen=True)
class Ministry:
    tenant: Tenant
    requester: Person
    approver: Person


def add_person(provider: OidcProvider, *, role: str, ministry_code: str | None) -> Person:
    account_id = f"{role.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    claims: dict[str, Any] = {
        "preferred_username": account_id,
        "name": f"{role.replace('_', ' ').title()} {account_id[-8:]}",
        "email": f"{account_id}@gov.example",
        "tonle_role": role,
    }
    if ministry_code is not None:
        claims["tonle_ministry"] = ministry_code
    provider.set_account(account_id, claims)
    return Person(account_id=account_id, username=account_id, role=role)


@pytest.fixture
def ministry(console_stack: Console) -> Ministry:
    """A ministry with a requester and its head (approver), each an account at the provider."""
    tenant = make_tenant()
    return Ministry(
        tenant=tenant,
        requester=add_person(console_stack.provider, role="requester", ministry_code=tenant.code),
        approver=add_person(console_stack.provider, role="ministry_approver", ministry_code=tenant.code),
    )


@pytest.fixture(scope="package")
def operator(console_stack: Console) -> Person:
    return add_person(console_stack.provider, role="operator", ministry_code=None)


def translate(lang: str) -> Callable[[str], str]:
    """The console's own catalogue, so a test finds a button by the name the page gives it."""
    return lambda message: i18n.gettext(lang, message)


def sign_in(page: Page, person: Person, *, next_path: str = "/console/") -> None:
    """Through the console's single sign-on button and the provider's own login and consent pages."""
    page.goto(f"/console/login?next={next_path}")
    page.locator("a[href^='/console/login/oidc'], form[action^='/console/login/oidc'] [type=submit]").first.click()
    page.get_by_placeholder("Enter any login").fill(person.account_id)
    # The provider's development login takes any password; the account id is what matters.
    page.get_by_placeholder("and password").fill("any")
    page.get_by_role("button", name="Sign-in").click()
    # The provider asks for consent unless it remembers a grant; then the console's menu shows.
    consent = page.get_by_role("button", name="Continue")
    signed_in = page.locator("nav.main-nav")
    expect(consent.or_(signed_in).first).to_be_visible()
    if consent.is_visible():
        consent.click()
    expect(signed_in).to_be_visible()
    # The console's user is the provider's account, mapped from its claims.
    expect(page.locator("header")).to_contain_text(person.username)


def fonts_rendering(page: Page, selector: str) -> dict[str, int]:
    """The fonts Chromium drew the first `selector` element's text with: family -> glyphs, as
    its layout reports them (CSS.getPlatformFontsForNode), so a test sees which font the Khmer
    came from and that no glyph fell back to nothing."""
    page.evaluate("async () => { await document.fonts.ready; }")
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()
    return {font["familyName"]: int(font["glyphCount"]) for font in fonts}


def axe_check(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page; fail on serious or critical violations, return all of them.

    The console's CSP (`script-src 'self'`) refuses inline and foreign scripts, so axe is not
    added as a <script> tag: Playwright evaluates the file's text through the DevTools protocol,
    which CSP does not govern. The page under test keeps its real CSP.
    """
    if not AXE_SCRIPT.is_file():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `make install` (npm ci in tests/browser)")
    page.evaluate(AXE_SCRIPT.read_text())
    results: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations'],"
        " runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    violations: list[dict[str, Any]] = results["violations"]
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    summary = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in blocking
    ]
    assert not blocking, f"axe-core on {page.url}:\n{json.dumps(summary, indent=2, ensure_ascii=False)}"
    return violations


def screenshot(page: Page, name: str, tmp_dir: Path) -> Path:
    """A 1280x800 screenshot: into docs/console/<name>.png with TONLE_UPDATE_SCREENSHOTS=1
    (reduced to a 256-colour palette by pngquant, about a third of the size), else into tmp_dir."""
    if os.environ.get("TONLE_UPDATE_SCREENSHOTS") != "1":
        target = tmp_dir / f"{name}.png"
        page.screenshot(path=str(target))
        return target
    target = DOCS_SCREENSHOTS / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))
    pngquant = shutil.which("pngquant")
    if pngquant is None:
        pytest.fail("pngquant is missing: `make screenshots` installs it")
    # Exit 98/99: the palette would not be smaller or good enough; the original stays.
    subprocess.run(
        [pngquant, "--force", "--skip-if-larger", "--quality=70-95", "--strip", "--output", str(target), str(target)],
        check=False,
        timeout=60,
    )
    return target
