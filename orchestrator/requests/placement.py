"""An order written in one statement: the ministry's quota charged, the request opened and its
audit entry appended, or none of the three.

Order submission is the API's hottest write. As one statement it is one round trip, and it can
be sent alone as its own transaction (`UnitOfWork.commit_with`), without BEGIN and COMMIT;
the ministry's row lock lasts only while PostgreSQL runs it. The charge is
`guarded_charge.GUARDED_CHARGE`: when its guard refuses, nothing is inserted and no row comes
back. A reused Idempotency-Key fails the request's insert on `uq_request_idempotency`, which
undoes the charge with the rest.
"""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from orchestrator.audit.models import AuditEntry
from orchestrator.ministry import guarded_charge
from orchestrator.requests.models import IDEMPOTENCY_CONSTRAINT, Request

_REQUEST = Request.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
_AUDIT_COLUMNS = [column for column in _AUDIT.c if column.key != "id"]


def _values_of(columns: Sequence[sa.Column[Any]], prefix: str) -> sa.Select[Any]:
    return sa.select(*(sa.bindparam(f"{prefix}{column.key}", type_=column.type) for column in columns))


_CHARGED = guarded_charge.GUARDED_CHARGE.cte("charged")
_OPENED = (
    sa.insert(_REQUEST)
    .from_select([c.key for c in _REQUEST.c], _values_of(list(_REQUEST.c), "request_").select_from(_CHARGED))
    .returning(_REQUEST.c.id)
    .cte("opened")
)
PLACE_ORDER = (
    sa.insert(_AUDIT)
    .from_select([c.key for c in _AUDIT_COLUMNS], _values_of(_AUDIT_COLUMNS, "audit_").select_from(_OPENED))
    .returning(_AUDIT.c.entity_id)
)


def parameters(
    *,
    request: Mapping[str, Any],
    audit_entry: Mapping[str, Any],
    dns_suffixes: Sequence[str],
    cost: Mapping[str, int],
) -> dict[str, Any]:
    """PLACE_ORDER's parameters: every column of the request row and of its audit entry (whose
    entity_id is the request's id), charging `cost` while the ministry's suffixes are these."""
    assert audit_entry["entity_id"] == str(request["id"])
    return {
        **guarded_charge.parameters(ministry_id=request["ministry_id"], dns_suffixes=dns_suffixes, cost=cost),
        **{f"request_{name}": value for name, value in request.items()},
        **{f"audit_{name}": value for name, value in audit_entry.items()},
    }


def reuses_a_key(error: IntegrityError) -> bool:
    """Whether the insert failed because the ministry already has an order under its key."""
    return getattr(getattr(error.orig, "diag", None), "constraint_name", None) == IDEMPOTENCY_CONSTRAINT


def placed(rows: Sequence[sa.Row[Any]], request_id: uuid.UUID) -> bool:
    """Whether PLACE_ORDER's rows say the order was written (else the charge's guard refused)."""
    return [row.entity_id for row in rows] == [str(request_id)]
