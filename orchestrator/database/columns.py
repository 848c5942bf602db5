"""Column helpers shared by the table models."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_field(*, default_factory: Any = dict, nullable: bool = False) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSONB, nullable=nullable))


def timestamp_field(*, nullable: bool = False, index: bool = False, default_now: bool = True) -> Any:
    if default_now:
        return Field(
            default_factory=utcnow,
            sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
        )
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=index))
