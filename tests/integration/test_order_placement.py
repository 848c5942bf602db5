"""Order submission's quick way (one statement, on the DNS suffixes this process last saw) and the
locked way it falls back to give the same answers, whether the suffixes it saw are current or not."""

import logging
from collections.abc import Callable

import pytest
from sqlmodel import col, func, select

from orchestrator.actors import SYSTEM
from orchestrator.audit.models import AuditEntry
from orchestrator.database.core import session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import InvalidInput, QuotaExceeded
from orchestrator.ministry import service as ministries
from orchestrator.ministry.models import Ministry, MinistryUpdate
from orchestrator.requests import service as requests
from orchestrator.requests.models import Request, RequestCreate
from tests.conftest import Database, Tenant, make_tenant

pytestmark = pytest.mark.integration

GUARD_REFUSED = "the charge's guard refused it"
QUICK = "one statement"


def way_of(caplog: pytest.LogCaptureFixture, order: Callable[[], requests.Submission]) -> str:
    """Which way `order` was taken: QUICK, or the reason the service logs for the locked way
    (one of GUARD_REFUSED, or a part of another reason, matched below)."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="orchestrator.requests.service"):
        assert order().created
    locked = [r.getMessage() for r in caplog.records if "under ministry" in r.getMessage()]
    if not locked:
        return QUICK
    for reason in (GUARD_REFUSED, "has not seen the ministry's DNS suffixes", "outside the suffixes last seen"):
        if reason in locked[0]:
            return reason
    return locked[0]


def submit(tenant: Tenant, domain: str) -> requests.Submission:
    data = RequestCreate(
        offering_id="web-hosting",
        plan="small",
        parameters={"name": "portal", "domain": domain, "admin_email": "web@example.org"},
    )
    with unit_of_work() as uow:
        return requests.submit(uow=uow, actor=tenant.requester.actor, data=data)


def set_suffixes(tenant: Tenant, suffixes: list[str]) -> None:
    with unit_of_work() as uow:
        ministries.update(
            session=uow.session,
            actor=SYSTEM,
            ministry_id=tenant.ministry_id,
            data=MinistryUpdate(dns_suffixes=suffixes),
        )
        uow.commit()


def written(tenant: Tenant) -> tuple[int, int, int]:
    """(requests, their `submitted` audit entries, vCPUs charged) of the tenant's ministry."""
    with session_scope() as session:
        orders = session.exec(select(func.count()).where(col(Request.ministry_id) == tenant.ministry_id)).one()
        entries = session.exec(
            select(func.count()).where(
                col(AuditEntry.ministry_id) == tenant.ministry_id,
                col(AuditEntry.entity) == "request",
                col(AuditEntry.action) == "submitted",
            )
        ).one()
        ministry = session.get(Ministry, tenant.ministry_id)
        assert ministry is not None
        return orders, entries, ministry.quota_used["vcpu"]


def test_suffixes_seen_before_a_change_never_decide_an_order(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = make_tenant()
    a, b, c = tenant.dns_suffix, f"b-{tenant.dns_suffix}", f"c-{tenant.dns_suffix}"
    assert way_of(caplog, lambda: submit(tenant, f"portal.{a}")) == "has not seen the ministry's DNS suffixes"
    assert way_of(caplog, lambda: submit(tenant, f"portal.{a}")) == QUICK
    set_suffixes(tenant, [b])
    # The names fail against the suffixes seen ([a]): checked again under the lock, they pass.
    assert way_of(caplog, lambda: submit(tenant, f"portal.{b}")) == "outside the suffixes last seen"
    # Names under neither the suffixes seen ([b]) nor, read again under the lock, the ministry's.
    with pytest.raises(InvalidInput) as refused:
        submit(tenant, f"portal.{a}")
    assert refused.value.field == "parameters.domain"
    set_suffixes(tenant, [b, c])
    # The names pass against the suffixes seen ([b]), which are not the ministry's any more: the
    # charge's guard refuses, and the locked way takes the order.
    assert way_of(caplog, lambda: submit(tenant, f"portal.{b}")) == GUARD_REFUSED
    assert way_of(caplog, lambda: submit(tenant, f"portal.{c}")) == QUICK
    assert written(tenant) == (5, 5, 5)


def test_an_order_short_of_quota_says_which_resource(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    tenant = make_tenant(vcpu=2, ram_gb=100, storage_gb=1000, object_gb=1000, public_ips=10)
    for _ in range(2):
        assert submit(tenant, f"portal.{tenant.dns_suffix}").created
    with pytest.raises(QuotaExceeded) as short:
        way_of(caplog, lambda: submit(tenant, f"portal.{tenant.dns_suffix}"))
    assert GUARD_REFUSED in caplog.text  # the quick way was tried, and wrote nothing
    assert short.value.field == "plan"
    assert short.value.extra["shortfall"] == {"vcpu": {"requested": 1, "remaining": 0}}
    assert written(tenant) == (2, 2, 2)
