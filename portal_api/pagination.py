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


LimitQuery = Annotated[int, Query(ge=1, le=500, description="Page size.")]
OffsetQuery = Annotated[int, Query(ge=0, description="Items to skip.")]
