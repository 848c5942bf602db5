"""The quota charge in one statement gives the answers of `quota.shortfall` and `quota.add`, on the
real PostgreSQL, for every resource and around every limit."""

import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from orchestrator import quota
from orchestrator.database.core import get_engine
from orchestrator.ministry import guarded_charge
from orchestrator.ministry.models import Ministry
from tests.conftest import Database, make_tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def connection(database: Database) -> Iterator[sa.Connection]:
    """A connection whose transaction is rolled back after the test: charges leave nothing."""
    with get_engine().connect() as connection:
        yield connection
        connection.rollback()


def _vectors(seed: int, count: int) -> list[tuple[dict[str, int], dict[str, int], dict[str, int]]]:
    """(limits, used, cost) triples with each resource at, just under and just over its limit,
    with negative and zero costs, and with resources missing from the stored vectors."""
    pick = random.Random(seed)
    triples = []
    for _ in range(count):
        limits, used, cost = {}, {}, {}
        for name in quota.RESOURCES:
            limit = pick.choice([0, 1, 5, 10, 10**9])
            if pick.random() < 0.9:
                limits[name] = limit
            taken = pick.choice([0, 1, limit - 1, limit, limit + 1]) if limit else pick.choice([0, 1])
            if pick.random() < 0.9:
                used[name] = max(0, taken)
            left = limits.get(name, 0) - used.get(name, 0)
            cost[name] = pick.choice([-1, 0, 1, left - 1, left, left + 1])
        triples.append((limits, used, cost))
    return triples


def test_the_guard_and_the_new_use_agree_with_the_python_rule(connection: sa.Connection) -> None:
    ministry = make_tenant()
    table = Ministry.__table__  # type: ignore[attr-defined]
    suffixes = [ministry.dns_suffix]
    charged_count = 0
    for limits, used, cost in _vectors(seed=20261202, count=300):
        connection.execute(
            sa.update(table).where(table.c.id == ministry.ministry_id).values(quota_limits=limits, quota_used=used)
        )
        statement = guarded_charge.parameters(ministry_id=ministry.ministry_id, dns_suffixes=suffixes, cost=cost)
        charged = connection.execute(guarded_charge.GUARDED_CHARGE, statement).all()
        fits = not quota.shortfall(limits=limits, used=used, cost=cost)
        assert bool(charged) == fits, (limits, used, cost)
        after = connection.execute(sa.select(table.c.quota_used).where(table.c.id == ministry.ministry_id)).scalar()
        assert after == (quota.add(used, cost) if fits else used), (limits, used, cost)
        charged_count += fits
    # The grid reaches both answers often enough to mean something.
    assert 30 < charged_count < 270, charged_count


def test_the_guard_refuses_when_the_suffixes_or_the_ministry_differ(connection: sa.Connection) -> None:
    ministry = make_tenant()
    cost = {"vcpu": 1}
    elsewhere = guarded_charge.parameters(ministry_id=ministry.ministry_id, dns_suffixes=["other.example"], cost=cost)
    assert connection.execute(guarded_charge.GUARDED_CHARGE, elsewhere).all() == []
    nobody = guarded_charge.parameters(ministry_id=uuid.uuid4(), dns_suffixes=[ministry.dns_suffix], cost=cost)
    assert connection.execute(guarded_charge.GUARDED_CHARGE, nobody).all() == []
    own = guarded_charge.parameters(ministry_id=ministry.ministry_id, dns_suffixes=[ministry.dns_suffix], cost=cost)
    assert [row.id for row in connection.execute(guarded_charge.GUARDED_CHARGE, own)] == [ministry.ministry_id]


def test_charges_racing_for_the_last_of_a_quota_never_overdraw_it(database: Database) -> None:
    # Twenty connections charge one vCPU each at once, ten times over, against a limit of ten:
    # the charges that wait for another's commit must see it.
    ministry = make_tenant(vcpu=10, ram_gb=10, storage_gb=10, object_gb=10, public_ips=10)
    table = Ministry.__table__  # type: ignore[attr-defined]
    racers = 20
    charge = guarded_charge.parameters(
        ministry_id=ministry.ministry_id, dns_suffixes=[ministry.dns_suffix], cost={"vcpu": 1}
    )

    def race(start: threading.Barrier) -> bool:
        with get_engine().connect() as connection:
            alone = connection.execution_options(isolation_level="AUTOCOMMIT")
            start.wait()
            return bool(alone.execute(guarded_charge.GUARDED_CHARGE, charge).all())

    for _ in range(10):
        with get_engine().begin() as connection:
            connection.execute(sa.update(table).where(table.c.id == ministry.ministry_id).values(quota_used={}))
        start = threading.Barrier(racers)
        with ThreadPoolExecutor(max_workers=racers) as pool:
            charged = list(pool.map(race, [start] * racers))
        with get_engine().connect() as connection:
            used = connection.execute(
                sa.select(table.c.quota_used).where(table.c.id == ministry.ministry_id)
            ).scalar_one()
        assert (charged.count(True), used["vcpu"]) == (10, 10)
