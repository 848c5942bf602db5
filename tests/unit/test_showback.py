"""Showback arithmetic: services charged by the seconds of the month they existed, on the plan they
were on, at the catalogue's price; and the CSV a spreadsheet cannot be tricked by."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from orchestrator.catalog.loader import CatalogError, load_catalog
from orchestrator.config import PROJECT_ROOT
from orchestrator.errors import InvalidInput
from orchestrator.showback import compute, spreadsheet
from orchestrator.showback.compute import Lifetime, Month, PlanChange, PlanPrice, PlanSpan
from orchestrator.showback.models import ShowbackReport
from orchestrator.showback.service import month_of

pytestmark = pytest.mark.unit

PRICES = {
    ("web-hosting", "small"): PlanPrice("Web hosting", "Small", 80_000),
    ("web-hosting", "large"): PlanPrice("Web hosting", "Large", 320_000),
    ("email", "team"): PlanPrice("E-mail", "Team", 150_000),
    ("free", "zero"): PlanPrice("Free", "Zero", 0),
}
NOV = Month(2026, 11)  # 30 days
LATER = datetime(2100, 1, 1, tzinfo=UTC)  # "now", long after every month these tests look at


def local(year: int, month: int, day: int, hour: int = 0) -> datetime:
    """A moment in the data centre's time (months are Cambodia's calendar months)."""
    return datetime(year, month, day, hour, tzinfo=compute.TIME_ZONE).astimezone(UTC)


def life(start: datetime | None, end: datetime | None, plan: str = "small", offering: str = "web-hosting") -> Lifetime:
    return Lifetime(
        service_id=uuid.uuid4(),
        service_name="portal",
        offering_id=offering,
        spans=compute.plan_spans(active_from=start, retired_at=end, current_plan=plan, changes=()),
    )


def amounts(*lifetimes: Lifetime, month: Month = NOV, now: datetime = LATER) -> list[int]:
    return [line.amount_riel for line in compute.lines_for(lifetimes=lifetimes, prices=PRICES, month=month, now=now)]


def test_months_are_cambodias_calendar_months() -> None:
    assert NOV.start == datetime(2026, 10, 31, 17, tzinfo=UTC)
    assert NOV.end == datetime(2026, 11, 30, 17, tzinfo=UTC)
    assert NOV.seconds == 30 * 86_400
    assert str(Month(2026, 1).previous()) == "2025-12" and str(Month(2026, 12).next()) == "2027-01"
    assert Month.containing(datetime(2026, 11, 30, 18, tzinfo=UTC)) == Month(2026, 12)  # already 1 December there


def test_leap_and_short_months_have_their_own_length() -> None:
    assert Month(2028, 2).seconds == 29 * 86_400
    assert Month(2026, 2).seconds == 28 * 86_400
    # A whole short month costs the whole price, as a whole long one does.
    for month in (Month(2026, 2), Month(2028, 2), Month(2026, 1)):
        assert amounts(life(local(2025, 1, 1), None), month=month) == [80_000]
    # Half of February is 14 days, not 15.5: the share is of that month's own seconds.
    assert amounts(life(local(2026, 2, 15), None), month=Month(2026, 2)) == [40_000]
    assert amounts(life(local(2028, 2, 15), None), month=Month(2028, 2)) == [round(80_000 * 15 / 29)]


def test_started_mid_month_is_charged_from_its_start() -> None:
    [line] = compute.lines_for(lifetimes=[life(local(2026, 11, 16), None)], prices=PRICES, month=NOV, now=LATER)
    assert line.start == local(2026, 11, 16) and line.end == NOV.end
    assert line.seconds == 15 * 86_400 and line.amount_riel == 40_000


def test_ended_mid_month_is_charged_until_retired() -> None:
    assert amounts(life(local(2026, 10, 1), local(2026, 11, 11))) == [round(80_000 * 10 / 30)]


def test_a_service_spanning_months_is_split_between_them() -> None:
    spanning = life(local(2026, 10, 21, 12), local(2026, 12, 3))
    october, november, december = (amounts(spanning, month=m)[0] for m in (Month(2026, 10), NOV, Month(2026, 12)))
    assert november == 80_000
    assert october == round(80_000 * 10.5 / 31) and december == round(80_000 * 2 / 31)


def test_no_charge_outside_the_life() -> None:
    assert amounts(life(local(2026, 9, 1), local(2026, 10, 15))) == []  # decommissioned before the month
    assert amounts(life(local(2026, 12, 1), None)) == []  # became active after it
    assert amounts(life(None, None)) == []  # never became active (a failed provision): never delivered
    assert amounts(life(local(2026, 9, 1), NOV.start)) == []  # retired at the very first instant


def test_the_current_month_counts_until_now_only() -> None:
    now = local(2026, 11, 11)
    [line] = compute.lines_for(lifetimes=[life(local(2026, 11, 1), None)], prices=PRICES, month=NOV, now=now)
    assert line.end == now and line.amount_riel == round(80_000 * 10 / 30)
    assert amounts(life(local(2026, 11, 1), None), month=Month(2027, 1), now=now) == []  # the future costs nothing yet


def test_zero_price_and_unknown_plans_cost_nothing_and_say_why() -> None:
    assert amounts(life(local(2026, 1, 1), None, plan="zero", offering="free")) == [0]
    [gone] = compute.lines_for(
        lifetimes=[life(local(2026, 1, 1), None, plan="retired-plan")], prices=PRICES, month=NOV, now=LATER
    )
    assert (gone.priced, gone.amount_riel, gone.plan_title) == (False, 0, "retired-plan")


def test_rounding_is_half_up_to_the_whole_riel() -> None:
    month = NOV.seconds
    assert compute.prorate(riel_per_month=3, seconds=month // 2, month_seconds=month) == 2  # 1.5 -> 2
    assert compute.prorate(riel_per_month=80_000, seconds=1, month_seconds=month) == 0  # 0.03 -> 0
    assert compute.prorate(riel_per_month=80_000, seconds=month, month_seconds=month) == 80_000
    # Exactly half a riel, from integers (a float 0.5 could land either side).
    assert compute.prorate(riel_per_month=1, seconds=1, month_seconds=2) == 1


def test_a_plan_change_splits_the_month_at_the_change() -> None:
    change = PlanChange(at=local(2026, 11, 11), from_plan="small", to_plan="large")
    spans = compute.plan_spans(active_from=local(2026, 10, 1), retired_at=None, current_plan="large", changes=[change])
    assert spans == (
        PlanSpan("small", local(2026, 10, 1), local(2026, 11, 11)),
        PlanSpan("large", local(2026, 11, 11), None),
    )
    lines = compute.lines_for(
        lifetimes=[Lifetime(uuid.uuid4(), "portal", "web-hosting", spans)], prices=PRICES, month=NOV, now=LATER
    )
    assert [(line.plan, line.amount_riel) for line in lines] == [
        ("small", round(80_000 * 10 / 30)),
        ("large", round(320_000 * 20 / 30)),
    ]


def test_totals_per_offering_add_the_rounded_lines() -> None:
    lives = [
        life(local(2026, 11, 16), None),
        life(local(2026, 1, 1), None),
        life(local(2026, 1, 1), None, "team", "email"),
    ]
    lines = compute.lines_for(lifetimes=lives, prices=PRICES, month=NOV, now=LATER)
    totals = {t.offering_id: (t.services, t.amount_riel) for t in compute.offering_totals(lines)}
    assert totals == {"email": (1, 150_000), "web-hosting": (2, 120_000)}


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "2026-00",
        "26-11",
        "2026-1",
        "1999-12",
        "2026-11-01",
        "\uff12\uff10\uff12\uff16-11",
        "\u17e2\u17e0\u17e2\u17e6-\u17e1\u17e1",
        "2026-11\n",
        "x",
    ],
)
def test_a_month_that_is_not_one_is_refused_naming_month(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        month_of(text)
    assert refused.value.field == "month"


def test_no_month_is_the_current_one() -> None:
    assert month_of(None, now=datetime(2026, 11, 30, 18, tzinfo=UTC)) == Month(2026, 12)
    assert month_of("2028-02") == Month(2028, 2)


# --- The CSV: every text cell is hostile. ---


@pytest.mark.parametrize(
    "hostile", ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx"]
)
def test_cells_a_spreadsheet_would_run_are_neutralised(hostile: str) -> None:
    assert spreadsheet.cell(hostile) == "'" + hostile


def test_plain_cells_and_numbers_are_left_alone() -> None:
    assert spreadsheet.cell("Small (1 vCPU)") == "Small (1 vCPU)"
    assert spreadsheet.cell(80_000) == 80_000 and spreadsheet.cell(True) == "yes"


def test_the_csv_has_a_row_per_line_and_neutralised_titles() -> None:
    hostile = PlanPrice('=HYPERLINK("http://evil.example","x")', "@cmd", 80_000)
    lines = compute.lines_for(
        lifetimes=[life(local(2026, 1, 1), None)], prices={("web-hosting", "small"): hostile}, month=NOV, now=LATER
    )
    report = ShowbackReport(
        ministry_id=uuid.uuid4(),
        ministry_code="health",
        ministry_name="Health",
        month=str(NOV),
        period_start=NOV.start,
        period_end=NOV.end,
        measured_until=NOV.end,
        rounding=compute.ROUNDING,
        lines=lines,
        offerings=compute.offering_totals(lines),
        total_riel=80_000,
    )
    rows = list(csv.DictReader(io.StringIO(spreadsheet.to_csv(report))))
    assert len(rows) == 1
    assert rows[0]["offering_title"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[0]["plan_title"] == "'@cmd" and rows[0]["amount_riel"] == "80000"
    assert spreadsheet.filename(report) == "showback-health-2026-11.csv"


# --- The price list: every plan has one, and a catalogue plan without one does not load. ---


def test_every_shipped_plan_has_a_price() -> None:
    offerings = load_catalog(PROJECT_ROOT / "catalog")
    prices = {(o.id, p.id): p.price_riel_per_month for o in offerings.values() for p in o.plans}
    assert prices[("web-hosting", "small")] == 80_000
    assert all(price > 0 for price in prices.values())


@pytest.mark.parametrize(("price", "message"), [(None, "Field required"), (-1, "greater than or equal to 0")])
def test_a_plan_without_a_sound_price_names_file_and_field(tmp_path: Path, price: int | None, message: str) -> None:
    data = yaml.safe_load((PROJECT_ROOT / "catalog" / "web-hosting.yaml").read_text())
    if price is None:
        del data["plans"][1]["price_riel_per_month"]
    else:
        data["plans"][1]["price_riel_per_month"] = price
    path = tmp_path / "web-hosting.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError) as refused:
        load_catalog(tmp_path)
    assert (refused.value.path, refused.value.field) == (path, "plans.1.price_riel_per_month")
    assert message in refused.value.message


def test_an_hour_is_an_hour_across_the_month_boundary() -> None:
    # Active the last hour of October and the first of November (local): one hour in each.
    spanning = life(NOV.start - timedelta(hours=1), NOV.start + timedelta(hours=1))
    [line] = compute.lines_for(lifetimes=[spanning], prices=PRICES, month=NOV, now=LATER)
    assert line.seconds == 3600
