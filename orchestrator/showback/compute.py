"""Showback as arithmetic: what each service cost its ministry in one month. Pure; no I/O
(`service` gathers the facts from the database and the catalogue).

A service is charged from the moment it first became active (its provision succeeded) until it
was retired (its decommission finished), on the plan it was on at each moment: a plan change
splits its time where the change finished. Each stretch in the month costs the plan's monthly
price times the share of the month's seconds it covers, rounded half up to the whole riel; the
totals are sums of those rounded lines, so a spreadsheet of the lines adds up to them.
"""

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from orchestrator.showback.models import OfferingTotal, ShowbackLine

# Months are the data centre's calendar months, in Cambodia's time (UTC+7, no daylight saving).
TIME_ZONE = ZoneInfo("Asia/Phnom_Penh")
ROUNDING = "each line half up to the whole riel; totals are sums of the lines"
FIRST_YEAR, LAST_YEAR = 2000, 2999
_MONTH_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits only: \d takes any script's


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not (FIRST_YEAR <= self.year <= LAST_YEAR and 1 <= self.month <= 12):
            raise ValueError(f"a month between {FIRST_YEAR}-01 and {LAST_YEAR}-12 in the form YYYY-MM")

    @classmethod
    def parse(cls, text: str) -> "Month":
        """`YYYY-MM`; ValueError saying what is expected otherwise."""
        found = _MONTH_TEXT.fullmatch(text)
        if not found:
            raise ValueError(f"a month between {FIRST_YEAR}-01 and {LAST_YEAR}-12 in the form YYYY-MM")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def containing(cls, moment: datetime) -> "Month":
        local = moment.astimezone(TIME_ZONE)
        return cls(local.year, local.month)

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def start(self) -> datetime:
        """Local midnight of the month's first day, in UTC."""
        return datetime(self.year, self.month, 1, tzinfo=TIME_ZONE).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """Where the month ends (the next one's start), exclusive."""
        if self.month == 12:
            return datetime(self.year + 1, 1, 1, tzinfo=TIME_ZONE).astimezone(UTC)
        return datetime(self.year, self.month + 1, 1, tzinfo=TIME_ZONE).astimezone(UTC)

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class PlanSpan:
    """A service on one plan from `start` until `end` (None: still so)."""

    plan: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class PlanChange:
    """A plan change that finished at `at` (a succeeded modify operation)."""

    at: datetime
    from_plan: str
    to_plan: str


@dataclass(frozen=True)
class Lifetime:
    service_id: uuid.UUID
    service_name: str
    offering_id: str
    spans: tuple[PlanSpan, ...]


@dataclass(frozen=True)
class PlanPrice:
    offering_title: str
    plan_title: str
    riel_per_month: int


def plan_spans(
    *, active_from: datetime | None, retired_at: datetime | None, current_plan: str, changes: Sequence[PlanChange]
) -> tuple[PlanSpan, ...]:
    """The stretches of a service's charged life, one per plan it was on. A service that never
    became active was never delivered, and costs nothing."""
    if active_from is None:
        return ()
    inside = sorted(
        (c for c in changes if c.at > active_from and (retired_at is None or c.at < retired_at)), key=lambda c: c.at
    )
    spans: list[PlanSpan] = []
    start, plan = active_from, inside[0].from_plan if inside else current_plan
    for change in inside:
        spans.append(PlanSpan(plan=plan, start=start, end=change.at))
        start, plan = change.at, change.to_plan
    spans.append(PlanSpan(plan=plan, start=start, end=retired_at))
    return tuple(spans)


def prorate(*, riel_per_month: int, seconds: int, month_seconds: int) -> int:
    """The monthly price's share for `seconds` of the month, half up to the whole riel (integers
    throughout: no float ever rounds a riel away)."""
    return (2 * riel_per_month * seconds + month_seconds) // (2 * month_seconds)


def lines_for(
    *, lifetimes: Iterable[Lifetime], prices: Mapping[tuple[str, str], PlanPrice], month: Month, now: datetime
) -> list[ShowbackLine]:
    """One line per service and plan with time in the month, counted until `now` at most (the
    current month is usage so far, not a forecast). A plan no longer in the catalogue has no
    price: its line says so (`priced` false) and costs 0 rather than a guess."""
    until = min(month.end, now)
    lines = []
    for life in lifetimes:
        for span in life.spans:
            start = max(span.start, month.start)
            end = until if span.end is None else min(span.end, until)
            if end <= start:
                continue
            seconds = int((end - start).total_seconds())
            price = prices.get((life.offering_id, span.plan))
            riel = price.riel_per_month if price else 0
            lines.append(
                ShowbackLine(
                    service_id=life.service_id,
                    service_name=life.service_name,
                    offering_id=life.offering_id,
                    offering_title=price.offering_title if price else life.offering_id,
                    plan=span.plan,
                    plan_title=price.plan_title if price else span.plan,
                    priced=price is not None,
                    price_riel_per_month=riel,
                    start=start,
                    end=end,
                    seconds=seconds,
                    amount_riel=prorate(riel_per_month=riel, seconds=seconds, month_seconds=month.seconds),
                )
            )
    lines.sort(key=lambda line: (line.offering_id, line.service_name, str(line.service_id), line.start))
    return lines


def offering_totals(lines: Iterable[ShowbackLine]) -> list[OfferingTotal]:
    totals: dict[str, OfferingTotal] = {}
    services: dict[str, set[uuid.UUID]] = {}
    for line in lines:
        total = totals.setdefault(
            line.offering_id,
            OfferingTotal(offering_id=line.offering_id, offering_title=line.offering_title, services=0, amount_riel=0),
        )
        total.amount_riel += line.amount_riel
        services.setdefault(line.offering_id, set()).add(line.service_id)
        total.services = len(services[line.offering_id])
    return [totals[offering_id] for offering_id in sorted(totals)]
