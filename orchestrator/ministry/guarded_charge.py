"""A ministry's quota charged in one guarded UPDATE, for a change sent as a single statement.

`service.charge` locks the ministry's row, checks in Python and writes: the lock is held across
the round trips in between. GUARDED_CHARGE is the same charge inside one statement: it adds the
cost to `quota_used` only where the cost fits the limits, and only while the ministry's DNS
suffixes are the ones the caller checked its names against; otherwise it changes nothing and
returns no row, and the caller goes back to the locked way, which says what is short.

The fit is `quota.shortfall`'s rule spelled in SQL (no resource whose cost is positive and
`used + cost > limit`); tests/integration/test_guarded_charge.py holds the two to the same
answers. The new `quota_used` is `quota.add`'s: every resource, none left out. The statement
stays under psycopg's 4 KB limit for caching a query's parsing, also inside `placement`'s.
"""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from orchestrator import quota
from orchestrator.ministry.models import Ministry

_MINISTRY = Ministry.__table__  # type: ignore[attr-defined]

# The row, locked, as it is once any quota move before this one has committed: a locking read
# waits for such a move and then returns the row's newest version, or nothing when its suffixes
# are no longer the ones given. The guard and the new use are worked out from this row, not in
# the UPDATE's own WHERE: re-checked after a wait, a WHERE that the planner has made a join
# (as NOT EXISTS becomes an anti-join) is not tested against the newest version, and orders
# raced past the limit (25 charged against a limit of 10, before this).
_LOCKED = (
    sa.select(_MINISTRY.c.id, _MINISTRY.c.quota_used, _MINISTRY.c.quota_limits)
    .where(
        _MINISTRY.c.id == sa.bindparam("charge_ministry_id"),
        _MINISTRY.c.dns_suffixes == sa.bindparam("charge_dns_suffixes", type_=JSONB),
    )
    .with_for_update(key_share=True)
    .cte("locked")
)

# The cost comes as one JSON object holding every resource (quota.normalise), walked as rows.
_COST = sa.func.jsonb_each_text(sa.bindparam("charge_cost", type_=JSONB)).table_valued("key", "value").alias("cost")
_resource, _cost = _COST.c.key, _COST.c.value.cast(sa.BigInteger)


def _amount(vector: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(vector.op("->>")(_resource).cast(sa.BigInteger), sa.literal_column("0"))


_USED, _LIMITS = _LOCKED.c.quota_used, _LOCKED.c.quota_limits
_SHORT = sa.select(_resource).where(_cost > sa.literal_column("0"), _amount(_USED) + _cost > _amount(_LIMITS))

GUARDED_CHARGE = (
    sa.update(_MINISTRY)
    .where(_MINISTRY.c.id == _LOCKED.c.id, ~_SHORT.exists())
    .values(quota_used=sa.select(sa.func.jsonb_object_agg(_resource, _amount(_USED) + _cost)).scalar_subquery())
    .returning(_MINISTRY.c.id)
)


def parameters(*, ministry_id: uuid.UUID, dns_suffixes: Sequence[str], cost: Mapping[str, int]) -> dict[str, Any]:
    """GUARDED_CHARGE's parameters: charge `cost` to the ministry while its suffixes are these."""
    return {
        "charge_ministry_id": ministry_id,
        "charge_dns_suffixes": list(dns_suffixes),
        "charge_cost": quota.normalise(cost),
    }
