"""The CA kept in PostgreSQL (key encrypted), created once, used to issue service certificates."""

import logging
from datetime import timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session

from orchestrator import secrets
from orchestrator.database.columns import utcnow
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.pki.issue import KeyAndCert, expires_within, names_of, new_ca, server_certificate
from orchestrator.pki.models import CertificateAuthority

log = logging.getLogger(__name__)

CA_NAME = "Tonle internal CA"
RENEW_BEFORE = timedelta(days=30)


def ca(*, session: Session) -> KeyAndCert:
    """The CA, created on first use in the caller's transaction.

    Two transactions creating it at once agree on one row: the second's insert waits on the
    first's primary key and does nothing once that commits (or inserts, if it rolled back).
    """
    row = session.get(CertificateAuthority, 1)
    if row is None:
        fresh = new_ca(CA_NAME)
        session.exec(
            insert(CertificateAuthority)
            .values(id=1, cert_pem=fresh.cert_pem, key_encrypted=secrets.encrypt(fresh.key_pem), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = session.get(CertificateAuthority, 1, populate_existing=True)
        assert row is not None
        log.info("internal CA ready")
    return KeyAndCert(key_pem=secrets.decrypt(row.key_encrypted), cert_pem=row.cert_pem)


def ca_certificate(*, session: Session | None = None) -> str:
    """The CA's certificate; without a session (steps, health checks, which hold no transaction)
    in a unit of work of its own."""
    if session is not None:
        return ca(session=session).cert_pem
    with unit_of_work() as uow:
        pem = ca(session=uow.session).cert_pem
        uow.commit()
    return pem


def certificate_for(*, session: Session, names: list[str], current: KeyAndCert | None = None) -> KeyAndCert:
    """Keep the current certificate while it covers `names` and is far from expiry; else issue."""
    if (
        current is not None
        and set(names) <= names_of(current.cert_pem)
        and not expires_within(current.cert_pem, RENEW_BEFORE)
    ):
        return current
    log.info("issuing a certificate for %s", ", ".join(names))
    return server_certificate(ca(session=session), names)
