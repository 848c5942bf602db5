"""The DNS status of mail domains: every record a domain should have (`dns_records`) compared with
what the data centre's DNS serves, as Mail-in-a-Box's status checks do.

The job queue runs `check_all` periodically; drift is recorded on the service (an audit entry,
`mail.dns_drift`, listing the problems) only when the set of problems differs from the last one
recorded, and `mail.dns_ok` when it clears, so an operator is told once, not every hour. The last
result is that audit entry: the log is append-only, so it is also the history of the domain's DNS.
"""

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography import x509
from sqlmodel import Session, col, select

from orchestrator.actors import SYSTEM, Actor
from orchestrator.audit import service as audit
from orchestrator.audit.models import AuditEntry
from orchestrator.database.core import session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import NotFound
from orchestrator.mail import dns_query
from orchestrator.mail.dns_records import ExpectedRecord, expected_records
from orchestrator.mail.models import MailDomain
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceStatus

log = logging.getLogger("tonle.mail.status")

DRIFT = "mail.dns_drift"
OK = "mail.dns_ok"

RecordState = Literal["ok", "missing", "different", "unexpected"]
# (name, type) -> the values DNS serves there
Lookup = Callable[[str, str], set[str]]


@dataclass(frozen=True)
class RecordStatus:
    name: str
    type: str
    expected: list[str]
    served: list[str]
    status: RecordState

    @property
    def problem(self) -> str | None:
        if self.status == "ok":
            return None
        served = f": serves {', '.join(repr(v) for v in self.served)}" if self.served else ""
        return f"{self.status} {self.type} {self.name}{served}"


@dataclass(frozen=True)
class DomainStatus:
    service_id: uuid.UUID
    domain: str
    records: list[RecordStatus]

    @property
    def problems(self) -> list[str]:
        return sorted(record.problem for record in self.records if record.problem)

    @property
    def ok(self) -> bool:
        return not self.problems


def compare(
    *, expected: Sequence[ExpectedRecord], ours: Sequence[ExpectedRecord], lookup: Lookup
) -> list[RecordStatus]:
    """Each expected (name, type) against what is served; `ours` are the (name, type) pairs the
    domain may have at all: served where none is expected (an MTA-STS announcement whose
    certificate expired), they are unexpected."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for record in expected:
        wanted.setdefault((record.name, record.type), set()).add(record.value)
    statuses = []
    for (name, record_type), values in wanted.items():
        served = lookup(name, record_type)
        state: RecordState = "ok" if served == values else "missing" if not served else "different"
        statuses.append(RecordStatus(name, record_type, sorted(values), sorted(served), state))
    for name, record_type in dict.fromkeys((record.name, record.type) for record in ours):
        if (name, record_type) in wanted:
            continue
        served = lookup(name, record_type)
        if served:
            statuses.append(RecordStatus(name, record_type, [], sorted(served), "unexpected"))
    return statuses


def certificate_valid(cert_pem: str | None, *, now: datetime) -> bool:
    """Whether the service's certificate (which serves the MTA-STS policy) is valid now."""
    if not cert_pem:
        return False
    certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    return certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc


def domain_records(
    service: Service, mail: MailDomain, *, now: datetime, mta_sts: bool | None = None
) -> list[ExpectedRecord]:
    published = certificate_valid(service.tls_cert_pem, now=now) if mta_sts is None else mta_sts
    return expected_records(
        domain=mail.domain,
        address=str((service.endpoints or {}).get("public_address") or ""),
        postmaster=str(service.parameters.get("postmaster") or f"postmaster@{mail.domain}"),
        dkim_selector=mail.dkim_selector,
        dkim_public_key=mail.dkim_public_key,
        mta_sts_published=published,
    )


def check_domain(service: Service, mail: MailDomain, *, lookup: Lookup, now: datetime) -> DomainStatus:
    return DomainStatus(
        service_id=service.id,
        domain=mail.domain,
        records=compare(
            expected=domain_records(service, mail, now=now),
            ours=domain_records(service, mail, now=now, mta_sts=True),
            lookup=lookup,
        ),
    )


def server_lookup(server: str) -> Lookup:
    resolver = dns_query.resolver_for(server)
    return lambda name, record_type: dns_query.served_values(resolver, name, record_type)


def status_of(*, session: Session, actor: Actor, service_id: uuid.UUID, lookup: Lookup | None = None) -> DomainStatus:
    """The live status of a service's mail domain (another ministry's service is not found).
    Raises `dns_query.DnsUnavailable` when the DNS server cannot be asked."""
    service = services.get(session=session, actor=actor, service_id=service_id)
    mail = session.get(MailDomain, service.id)
    if mail is None:
        raise NotFound(f"service {service_id} has no mail domain")
    return check_domain(
        service, mail, lookup=lookup or server_lookup(dns_query.configured_server()), now=datetime.now(UTC)
    )


def last_problems(*, session: Session, service_id: uuid.UUID) -> list[str]:
    """The problems the last recorded result listed; none recorded yet: none."""
    entry = session.exec(
        select(AuditEntry)
        .where(AuditEntry.entity == "service", AuditEntry.entity_id == str(service_id))
        .where(col(AuditEntry.action).in_([DRIFT, OK]))
        .order_by(col(AuditEntry.id).desc())
        .limit(1)
    ).first()
    return list((entry.detail or {}).get("problems") or []) if entry else []


def record_if_changed(*, session: Session, service: Service, status: DomainStatus) -> bool:
    """An audit entry on the service when its problems differ from the last ones recorded."""
    if status.problems == last_problems(session=session, service_id=service.id):
        return False
    detail: dict[str, Any] = {"domain": status.domain, "problems": status.problems}
    audit.record(
        session=session,
        actor=SYSTEM,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action=DRIFT if status.problems else OK,
        detail=detail,
    )
    if status.problems:
        log.warning("mail domain %s of service %s drifted: %s", status.domain, service.id, "; ".join(status.problems))
    return True


def domains_to_check(*, session: Session) -> list[uuid.UUID]:
    return list(
        session.exec(
            select(Service.id)
            .join(MailDomain, col(MailDomain.service_id) == col(Service.id))
            .where(Service.status == ServiceStatus.active)
        ).all()
    )


def check_one(*, session: Session, service_id: uuid.UUID, lookup: Lookup, now: datetime) -> DomainStatus | None:
    """Check and record one service's domain in the caller's transaction."""
    service = session.get(Service, service_id)
    mail = session.get(MailDomain, service_id)
    if service is None or mail is None or service.status != ServiceStatus.active:
        return None
    status = check_domain(service, mail, lookup=lookup, now=now)
    record_if_changed(session=session, service=service, status=status)
    return status


def check_all(*, lookup: Lookup | None = None, now: datetime | None = None) -> list[DomainStatus]:
    """Every active service's mail domain, one transaction each; what the job queue runs."""
    with session_scope() as session:
        service_ids = domains_to_check(session=session)
    if not service_ids:
        return []
    try:
        lookup = lookup or server_lookup(dns_query.configured_server())
    except dns_query.DnsUnavailable as exc:
        log.warning("mail DNS status not checked: %s", exc)
        return []
    results = []
    for service_id in service_ids:
        with unit_of_work() as uow:
            try:
                status = check_one(
                    session=uow.session, service_id=service_id, lookup=lookup, now=now or datetime.now(UTC)
                )
            except dns_query.DnsUnavailable as exc:
                # Our DNS not answering is no drift of the domain's: nothing is recorded.
                log.warning("mail DNS status of service %s not checked: %s", service_id, exc)
                continue
            uow.commit()
        if status is not None:
            results.append(status)
    return results
