"""The showback page: what a ministry's services cost it in a month, and its CSV download.

A ministry's own people see their ministry's; the data centre's people choose one. Another
ministry's is 404, as at the API (the service function decides, with the session's actor).
"""

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from orchestrator.errors import InvalidInput
from orchestrator.ministry import service as ministries
from orchestrator.showback import service as showbacks
from portal_api.console import i18n
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import is_platform, page_language, render
from portal_api.deps import SessionDep
from portal_api.routers.showback import csv_response

router = APIRouter(prefix=PATH, include_in_schema=False)

MonthQuery = Annotated[str, Query(max_length=32)]
MinistryQuery = Annotated[str, Query(max_length=64)]


def _ministry_id(value: str, fallback: uuid.UUID | None) -> uuid.UUID | None:
    """The ministry asked for, or the person's own; a value that is no ministry id is refused naming it."""
    if not value:
        return fallback
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput("choose a ministry from the list", field="ministry") from exc


@router.get("/showback")
def showback_page(
    request: Request, session: SessionDep, actor: ConsoleActorDep, month: MonthQuery = "", ministry: MinistryQuery = ""
) -> Response:
    lang = page_language(request)
    choices = sorted(ministries.list_all(session=session), key=lambda m: m.name) if is_platform(actor) else []
    context: dict[str, Any] = {
        "nav": "showback",
        "month_value": month,
        "ministry_value": ministry,
        "ministries": choices,
        "errors": {},
        "report": None,
    }
    try:
        chosen_month = showbacks.month_of(month)
        context["month_value"] = str(chosen_month)
        ministry_id = _ministry_id(ministry, actor.ministry_id)
    except InvalidInput as refused:
        # The field at fault, in place, in the page's language (the detail itself is English data).
        field = refused.field or "month"
        context["errors"] = {field: i18n.gettext(lang, FIELD_ERRORS[field])}
        return render(request, "showback.html", context, status_code=422)
    if ministry_id is not None:
        report = showbacks.showback(session=session, actor=actor, ministry_id=ministry_id, month=chosen_month)
        context.update(
            report=report,
            ministry_value=str(ministry_id),
            last_day=report.period_end - timedelta(seconds=1),
            previous_month=str(chosen_month.previous()),
            next_month=str(chosen_month.next()),
            # The month under way is counted until now; say so rather than look like a whole month.
            counted_so_far=report.period_start < report.measured_until < report.period_end,
        )
    return render(request, "showback.html", context)


@router.get("/showback.csv")
def showback_csv(
    session: SessionDep, actor: ConsoleActorDep, month: MonthQuery = "", ministry: MinistryQuery = ""
) -> Response:
    ministry_id = _ministry_id(ministry, actor.ministry_id)
    if ministry_id is None:
        raise InvalidInput("choose a ministry from the list", field="ministry")
    report = showbacks.showback(session=session, actor=actor, ministry_id=ministry_id, month=showbacks.month_of(month))
    return csv_response(report)


# What the page says at a refused field (translated); the service's own detail is for the API.
FIELD_ERRORS = {
    "month": "Enter a month as YYYY-MM, for example 2026-11.",
    "ministry": "Choose a ministry from the list.",
}
