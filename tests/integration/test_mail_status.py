"""The mail DNS status check against a DNS server: what a domain should have (`dns_records`) against
what is served, drift recorded on the service once per change, and the API's per-record view.

The DNS server is `AuthoritativeDnsDouble` (tests/integration/dns_double.py), a double of the
data centre's BIND at the boundary this test is not about; tests/cloud/test_mail_dns.py reads the
records from BIND itself. The mail
service is a web-hosting order built by the integration tier's no-op adapters, given the stack
outputs and mail domain an e-mail service has (the `email` offering is ordered end to end in the
cloud tier).
"""

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import col, select

from orchestrator.audit.models import AuditEntry
from orchestrator.config import get_settings
from orchestrator.database.core import session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.mail import dkim
from orchestrator.mail import status as mail_status
from orchestrator.mail.dns_query import DnsUnavailable, configured_server
from orchestrator.mail.dns_records import ExpectedRecord
from orchestrator.mail.models import MailDomain
from orchestrator.services.models import Service
from stacks.components import dns as dns_component
from tests.conftest import Database, Platform, Tenant, active_service, serving_api
from tests.integration.dns_double import AuthoritativeDnsDouble, Zone

pytestmark = pytest.mark.integration

PUBLIC_ADDRESS = "172.24.4.77"


def as_published(records: list[ExpectedRecord]) -> Zone:
    """The zone as the email stack publishes it (TXT text split by the stack's own `dns.txt`)."""
    zone: Zone = {}
    for record in records:
        value = record.value
        if record.type == "TXT":
            value = dns_component.txt(value)
        zone.setdefault((record.name, record.type), []).append(value)
    return zone


@pytest.fixture(scope="module")
def dns_double() -> Iterator[AuthoritativeDnsDouble]:
    double = AuthoritativeDnsDouble()
    yield double
    double.close()


@pytest.fixture(scope="module")
def status_api(
    database: Database, dns_double: AuthoritativeDnsDouble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with serving_api(
        database.url, tmp_path_factory.mktemp("mail-status-api"), TONLE_DNS_SERVER=dns_double.address
    ) as url:
        yield url


@pytest.fixture
def status_client(status_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=status_api, timeout=30.0) as http:
        yield http


def mail_service(client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]) -> uuid.UUID:
    service_id = uuid.UUID(active_service(client, tenant, platform, work))
    domain = f"mail.{tenant.dns_suffix}"
    key = dkim.generate(now=datetime.now(UTC))
    with unit_of_work() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        service.endpoints = {"mail_domain": domain, "mx": f"mail.{domain}", "public_address": PUBLIC_ADDRESS}
        service.parameters = {**service.parameters, "postmaster": f"postmaster@{domain}"}
        uow.session.add(
            MailDomain(
                service_id=service_id,
                domain=domain,
                dkim_selector=key.selector,
                dkim_private_key_encrypted="not used by the status check",
                dkim_public_key=key.public_key,
            )
        )
        uow.commit()
    return service_id


def expected_for(service_id: uuid.UUID) -> list[ExpectedRecord]:
    with session_scope() as session:
        service, mail = session.get(Service, service_id), session.get(MailDomain, service_id)
        assert service is not None and mail is not None
        return mail_status.domain_records(service, mail, now=datetime.now(UTC))


def check(service_id: uuid.UUID, dns_double: AuthoritativeDnsDouble) -> mail_status.DomainStatus:
    with unit_of_work() as uow:
        found = mail_status.check_one(
            session=uow.session,
            service_id=service_id,
            lookup=mail_status.server_lookup(dns_double.address),
            now=datetime.now(UTC),
        )
        uow.commit()
    assert found is not None
    return found


def drift_entries(service_id: uuid.UUID) -> list[AuditEntry]:
    with session_scope() as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.entity_id == str(service_id))
                .where(col(AuditEntry.action).in_([mail_status.DRIFT, mail_status.OK]))
                .order_by(col(AuditEntry.id))
            ).all()
        )


def test_drift_is_recorded_once_per_change_and_the_api_shows_each_record(
    status_client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    dns_double: AuthoritativeDnsDouble,
) -> None:
    service_id = mail_service(status_client, tenant, platform, work)
    expected = expected_for(service_id)
    domain = f"mail.{tenant.dns_suffix}"
    assert any(record.name == f"_mta-sts.{domain}" for record in expected)  # its certificate is valid
    dns_double.zone = as_published(expected)

    healthy = check(service_id, dns_double)
    assert healthy.ok, healthy.problems
    assert len(healthy.records) == len({(r.name, r.type) for r in expected})
    assert drift_entries(service_id) == []

    # Someone removes DMARC and widens SPF by hand; a record for our name appears from nowhere.
    dns_double.zone = {
        **{key: value for key, value in as_published(expected).items() if key != (f"_dmarc.{domain}", "TXT")},
        (domain, "TXT"): ['"v=spf1 a mx ~all"'],
    }
    drifted = check(service_id, dns_double)
    assert drifted.problems == sorted(
        [f"different TXT {domain}: serves 'v=spf1 a mx ~all'", f"missing TXT _dmarc.{domain}"]
    )
    check(service_id, dns_double)  # the same problems again: nothing new recorded
    entries = drift_entries(service_id)
    assert [(entry.action, entry.detail["problems"]) for entry in entries] == [(mail_status.DRIFT, drifted.problems)]
    assert entries[0].actor == "system" and entries[0].ministry_id == tenant.ministry_id

    answer = status_client.get(f"/v1/services/{service_id}/mail/dns-status", headers=tenant.requester.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is False and body["domain"] == domain
    by_key = {(record["name"], record["type"]): record for record in body["records"]}
    assert by_key[(f"_dmarc.{domain}", "TXT")]["status"] == "missing"
    assert by_key[(domain, "TXT")] == {
        "name": domain,
        "type": "TXT",
        "expected": ["v=spf1 mx -all"],
        "served": ["v=spf1 a mx ~all"],
        "status": "different",
    }
    # The DKIM key, longer than one TXT string, is read back whole.
    dkim_record = next(record for key, record in by_key.items() if "._domainkey." in key[0])
    assert dkim_record["status"] == "ok" and len(dkim_record["served"][0]) > 255
    assert by_key[(f"mail.{domain}", "A")]["served"] == [PUBLIC_ADDRESS]

    dns_double.zone = as_published(expected)
    assert check(service_id, dns_double).ok
    assert [entry.action for entry in drift_entries(service_id)] == [mail_status.DRIFT, mail_status.OK]


def test_an_announced_policy_without_a_valid_certificate_is_unexpected(
    status_client: httpx.Client,
    tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    dns_double: AuthoritativeDnsDouble,
) -> None:
    service_id = mail_service(status_client, tenant, platform, work)
    announced = expected_for(service_id)
    with unit_of_work() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        service.tls_cert_pem = None  # no certificate serves the policy any more
        uow.commit()
    dns_double.zone = as_published(announced)
    found = check(service_id, dns_double)
    domain = f"mail.{tenant.dns_suffix}"
    assert [(r.name, r.status) for r in found.records if r.status != "ok"] == [(f"_mta-sts.{domain}", "unexpected")]


def test_another_ministrys_service_and_a_service_without_mail_are_not_found(
    status_client: httpx.Client,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
) -> None:
    service_id = mail_service(status_client, tenant, platform, work)
    path = f"/v1/services/{service_id}/mail/dns-status"
    assert status_client.get(path, headers=other_tenant.requester.headers).status_code == 404
    plain = active_service(status_client, other_tenant, platform, work)
    answer = status_client.get(f"/v1/services/{plain}/mail/dns-status", headers=other_tenant.requester.headers)
    assert answer.status_code == 404 and "no mail domain" in answer.text


def test_the_periodic_check_covers_every_active_mail_domain(
    status_client: httpx.Client, tenant: Tenant, platform: Platform, work: Callable[[], None]
) -> None:
    service_id = mail_service(status_client, tenant, platform, work)
    with session_scope() as session:
        every_domain = mail_status.domains_to_check(session=session)
    served: dict[tuple[str, str], set[str]] = {}
    for each in every_domain:
        for record in expected_for(each):
            served.setdefault((record.name, record.type), set()).add(record.value)
    checked = mail_status.check_all(lookup=lambda name, record_type: served.get((name, record_type), set()))
    assert service_id in {status.service_id for status in checked}
    assert all(status.ok for status in checked)
    assert drift_entries(service_id) == []


def test_a_long_answer_is_read_whole_after_truncation(dns_double: AuthoritativeDnsDouble) -> None:
    """Over UDP the double answers TC, as a server would; the lookup asks again over TCP."""
    dns_double.zone = {("long.example", "TXT"): [" ".join(['"' + "x" * 255 + '"'] * 4)]}
    lookup = mail_status.server_lookup(dns_double.address)
    assert lookup("long.example", "TXT") == {"x" * 1020}
    assert lookup("absent.example", "TXT") == set()


def test_without_a_dns_server_the_check_says_which_setting_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONLE_DNS_SERVER", "")
    get_settings.cache_clear()
    try:
        with pytest.raises(DnsUnavailable, match=r"no DNS server configured \(TONLE_DNS_SERVER\)"):
            configured_server()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
