"""One page of a listing, with the total count for clients that page through."""

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# PostgreSQL compares integers as int4/int8: a larger query parameter is a 422, not a database error.
MAX_OFFSET = 10**9
MAX_EVENT_ID = 2**63 - 1

LimitQuery = Annotated[int, Query(ge=1, le=500, description="Page size.")]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
