"""Query shapes every domain package uses: row locks and pages."""

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import Session, SQLModel, select
from sqlmodel.sql.expression import SelectOfScalar

M = TypeVar("M", bound=SQLModel)


def locked(session: Session, model: type[M], row_id: uuid.UUID) -> M | None:
    """The row under `SELECT ... FOR UPDATE` (held until the transaction ends), freshly read."""
    id_column: Any = model.id  # type: ignore[attr-defined]
    return session.exec(
        select(model).where(id_column == row_id).with_for_update().execution_options(populate_existing=True)
    ).first()


def page(
    session: Session, query: SelectOfScalar[M], *order_by: Any, limit: int, offset: int
) -> tuple[Sequence[M], int]:
    """One page of the query's rows and the total count of all its rows."""
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(*order_by).offset(offset).limit(limit)).all()
    return rows, total
