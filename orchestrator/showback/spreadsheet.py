"""A showback report as CSV for spreadsheets. Every text cell is hostile: one a spreadsheet would
read as a formula (starting with = + - @, a tab or a line break) is prefixed with `'`, so it stays
text (OWASP's advice on CSV injection)."""

import csv
import io

from orchestrator.showback.models import ShowbackReport

HEADER = (
    "month",
    "ministry",
    "service_id",
    "service",
    "offering",
    "offering_title",
    "plan",
    "plan_title",
    "priced",
    "price_riel_per_month",
    "start",
    "end",
    "seconds",
    "amount_riel",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def cell(value: object) -> str | int:
    """A value as a cell: numbers as they are, text neutralised."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def filename(report: ShowbackReport) -> str:
    # The code is a slug (^[a-z][a-z0-9-]*$) and the month YYYY-MM: safe in a header as they are.
    return f"showback-{report.ministry_code}-{report.month}.csv"


def to_csv(report: ShowbackReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for line in report.lines:
        writer.writerow(
            cell(value)
            for value in (
                report.month,
                report.ministry_code,
                line.service_id,
                line.service_name,
                line.offering_id,
                line.offering_title,
                line.plan,
                line.plan_title,
                line.priced,
                line.price_riel_per_month,
                line.start.isoformat(),
                line.end.isoformat(),
                line.seconds,
                line.amount_riel,
            )
        )
    return out.getvalue()
