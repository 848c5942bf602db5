"""Cost showback: what a ministry's services cost it in a month, as JSON or CSV."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from orchestrator.showback import service as showbacks
from orchestrator.showback import spreadsheet
from orchestrator.showback.models import ShowbackReport
from portal_api.deps import ActorDep, SessionDep

router = APIRouter(prefix="/v1/ministries", tags=["showback"])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def wants_csv(accept: str | None) -> bool:
    """CSV only when preferred to JSON (by q-value, then order); `*/*` and no header keep JSON."""
    listed: dict[str, tuple[float, int]] = {}
    for position, part in enumerate((accept or "").split(",")):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        quality = 1.0
        for name, _, value in (param.partition("=") for param in params):
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        listed.setdefault(media, (quality, position))
    csv_q, csv_at = listed.get("text/csv", (0.0, 0))
    json_q, json_at = listed.get("application/json", (0.0, 0))
    return csv_q > 0 and (csv_q > json_q or (csv_q == json_q and csv_at < json_at))


def csv_response(report: ShowbackReport) -> Response:
    return Response(
        spreadsheet.to_csv(report),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{spreadsheet.filename(report)}"',
            "Cache-Control": "no-store",
            "Vary": "Accept",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/{ministry_id}/showback",
    summary="What the ministry's services cost in a month (riel), from their lifetimes and the plans' prices",
    description=(
        "Each service is charged from when it became active until it was retired, on the plan it was on, "
        "prorated by the seconds of the month (Cambodia's time) it existed; the current month is counted until "
        "now. Lines are rounded half up to the whole riel and the totals add them up. CSV with `?format=csv` or "
        "`Accept: text/csv`; cells that a spreadsheet would read as a formula are prefixed with `'`."
    ),
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}}},
        404: {"description": "No such ministry, or another ministry's"},
        422: {"description": "`month` is not YYYY-MM"},
    },
    response_model=ShowbackReport,
)
def get_showback(
    ministry_id: uuid.UUID,
    session: SessionDep,
    actor: ActorDep,
    month: Annotated[str | None, Query(max_length=32, description="YYYY-MM; the current month by default")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="csv: a spreadsheet download")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response | ShowbackReport:
    report = showbacks.showback(session=session, actor=actor, ministry_id=ministry_id, month=showbacks.month_of(month))
    if format == "csv" or (format is None and wants_csv(accept)):
        return csv_response(report)
    return report
