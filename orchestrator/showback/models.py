"""What a showback report says: one line per service and plan in the month, totals per offering."""

import uuid
from datetime import datetime
from typing import Literal

from sqlmodel import Field, SQLModel


class ShowbackLine(SQLModel):
    service_id: uuid.UUID
    service_name: str
    offering_id: str
    offering_title: str
    plan: str
    plan_title: str
    priced: bool = Field(description="False when the plan is no longer in the catalogue: the line then costs 0.")
    price_riel_per_month: int
    start: datetime = Field(description="When the charged time in the month begins (the month's start at the latest).")
    end: datetime = Field(description="When it ends: retirement, a plan change, the month's end or now.")
    seconds: int
    amount_riel: int


class OfferingTotal(SQLModel):
    offering_id: str
    offering_title: str
    services: int
    amount_riel: int


class ShowbackReport(SQLModel):
    ministry_id: uuid.UUID
    ministry_code: str
    ministry_name: str
    month: str = Field(description="YYYY-MM, a calendar month in Cambodia's time (UTC+7).")
    period_start: datetime
    period_end: datetime = Field(description="The next month's start, exclusive.")
    measured_until: datetime = Field(description="The month's end, or now while the month is under way.")
    currency: Literal["KHR"] = "KHR"
    rounding: str
    lines: list[ShowbackLine]
    offerings: list[OfferingTotal]
    total_riel: int
