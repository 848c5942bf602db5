"""Order submission's quick way (one statement, on the DNS suffixes this process last saw) and the
locked way it falls back to give the same answers, whether the suffixes it saw are current or not."""

import logging

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

GUARD_REFUSED = "refused by the charge's guard"


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
    assert submit(tenant, f"portal.{a}").created  # the locked way: this process has not seen the ministry
    set_suffixes(tenant, [b])
    # The names fail against the suffixes seen ([a]): checked again under the lock, they pass.
    assert submit(tenant, f"portal.{b}").created
    # Names under neither the suffixes seen ([b]) nor, read again under the lock, the ministry's.
    with pytest.raises(InvalidInput) as refused:
        submit(tenant, f"portal.{a}")
    assert refused.value.field == "parameters.domain"
    set_suffixes(tenant, [b, c])
    # The names pass against the suffixes seen ([b]), which are not the ministry's any more: the
    # charge's guard refuses, and the locked way takes the order.
    with caplog.at_level(logging.DEBUG, logger="orchestrator.requests.service"):
        assert submit(tenant, f"portal.{b}").created
    assert GUARD_REFUSED in caplog.text
    caplog.clear()
    # Now the suffixes seen are current: the quick way takes it alone.
    with caplog.at_level(logging.DEBUG, logger="orchestrator.requests.service"):
        assert submit(tenant, f"portal.{c}").created
    assert GUARD_REFUSED not in caplog.text
    assert written(tenant) == (4, 4, 4)


def test_an_order_short_of_quota_says_which_resource(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    tenant = make_tenant(vcpu=1, ram_gb=100, storage_gb=1000, object_gb=1000, public_ips=10)
    assert submit(tenant, f"portal.{tenant.dns_suffix}").created
    with caplog.at_level(logging.DEBUG, logger="orchestrator.requests.service"), pytest.raises(QuotaExceeded) as short:
        submit(tenant, f"portal.{tenant.dns_suffix}")
    assert GUARD_REFUSED in caplog.text  # the quick way was tried, and wrote nothing
    assert short.value.field == "plan"
    assert short.value.extra["shortfall"] == {"vcpu": {"requested": 1, "remaining": 0}}
    assert written(tenant) == (1, 1, 1)
