"""Pages: one Jinja2 environment, every string through the page's language, every value escaped.

`render` gives each template what every page needs: who is signed in, the language, the CSRF
token, and filters that write numbers, dates and riel as the page's language does.
"""

from contextvars import ContextVar
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context

from orchestrator.actors import Actor, Role
from portal_api.console import csrf, i18n
from portal_api.console.session import LANGUAGE_COOKIE, remember_language

TEMPLATES_DIR = Path(__file__).parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=env)


# The page being rendered's language, also for macros imported without the page's context.
_page_lang: ContextVar[str] = ContextVar("console_page_lang", default=i18n.DEFAULT_LANGUAGE)


def _lang(context: Context) -> str:
    lang = context.get("lang")
    return lang if i18n.is_language(lang) else _page_lang.get()


@pass_context
def _gettext(context: Context, message: str) -> str:
    return i18n.gettext(_lang(context), message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return i18n.ngettext(_lang(context), singular, plural, count)


env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]


@pass_context
def _digits(context: Context, value: object) -> str:
    return i18n.localise_digits(str(value), _lang(context))


@pass_context
def _number(context: Context, value: object) -> str:
    return i18n.format_number(value, _lang(context))


@pass_context
def _date(context: Context, value: Any) -> str:
    return i18n.format_date(value, _lang(context))


@pass_context
def _datetime(context: Context, value: Any) -> str:
    return i18n.format_datetime(value, _lang(context))


@pass_context
def _riel(context: Context, amount: int) -> str:
    return i18n.format_riel(amount, _lang(context))


@pass_context
def _status_label(context: Context, status: object) -> str:
    """A status as words of the page's language (`pending_approval` -> "pending approval")."""
    return i18n.gettext(_lang(context), str(status).replace("_", " "))


env.filters.update(
    digits=_digits, number=_number, date=_date, datetime=_datetime, riel=_riel, status_label=_status_label
)


def page_language(request: Request) -> str:
    return i18n.negotiate(
        chosen=request.query_params.get("lang"),
        remembered=request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


def is_platform(actor: Actor | None) -> bool:
    return actor is not None and actor.role in (Role.operator, Role.admin)


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    lang = page_language(request)
    seed, new_anonymous_seed = csrf.ensure_seed(request)
    actor: Actor | None = getattr(request.state, "actor", None)
    full_context: dict[str, Any] = {
        "request": request,
        "actor": actor,
        "user_name": actor.username if actor else "",
        "is_platform": is_platform(actor),
        "lang": lang,
        "csrf_token": csrf.token_for(seed),
        "nav": context.get("nav", ""),
        "here": request.url.path,
    }
    full_context.update(context)
    rendering = _page_lang.set(lang)
    try:
        response = templates.TemplateResponse(request, template, full_context, status_code=status_code)
    finally:
        _page_lang.reset(rendering)
    if new_anonymous_seed:
        csrf.set_anonymous_cookie(response, new_anonymous_seed)
    chosen = request.query_params.get("lang")
    if i18n.is_language(chosen) and chosen != request.cookies.get(LANGUAGE_COOKIE):
        remember_language(response, str(chosen))
    response.headers["content-language"] = lang
    return response
