"""What a run of the mail playbooks is given, read from the database when the run starts: so a
retried `sync-mailboxes` applies the accounts as they are then, not as they were when asked."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from orchestrator import secrets
from orchestrator.mail.dns_records import mail_host
from orchestrator.mail.models import PROBE_RECIPIENT, PROBE_SENDER, MailAlias, Mailbox, MailboxStatus, MailDomain


def postmaster(domain: str, parameters: Mapping[str, Any]) -> str:
    given = parameters.get("postmaster")
    return given if isinstance(given, str) and given else f"postmaster@{domain}"


def mail_domain(*, session: Session, service_id: uuid.UUID) -> MailDomain | None:
    return session.get(MailDomain, service_id)


def secret_var(*, session: Session, domain: MailDomain, parameters: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The `mail` var of the contract (playbooks/README.md): DKIM private key, password hashes and
    the probe's passwords, so it is passed for the length of a run only."""
    mailboxes = session.exec(
        select(Mailbox).where(Mailbox.service_id == domain.service_id).order_by(col(Mailbox.address))
    ).all()
    aliases = session.exec(
        select(MailAlias).where(MailAlias.service_id == domain.service_id).order_by(col(MailAlias.address))
    ).all()
    active = [m for m in mailboxes if m.status == MailboxStatus.active]
    probe = {m.address: m for m in active if m.system}
    return {
        "domain": domain.domain,
        "hostname": mail_host(domain.domain),
        "postmaster": postmaster(domain.domain, parameters),
        "dkim": {
            "selector": domain.dkim_selector,
            "private_key_pem": secrets.decrypt(domain.dkim_private_key_encrypted),
        },
        "mailboxes": [
            {"address": m.address, "full_name": m.full_name, "password_hash": m.password_hash, "quota_mb": m.quota_mb}
            for m in active
        ],
        "removed": [
            {"address": m.address, "purge": m.retain_until is not None and m.retain_until <= now}
            for m in mailboxes
            if m.status == MailboxStatus.removed
        ],
        "aliases": [{"address": a.address, "destinations": list(a.destinations)} for a in aliases],
        "probe": {
            "sender": _probe_account(probe.get(f"{PROBE_SENDER}@{domain.domain}")),
            "recipient": _probe_account(probe.get(f"{PROBE_RECIPIENT}@{domain.domain}")),
        },
    }


def _probe_account(mailbox: Mailbox | None) -> dict[str, str] | None:
    if mailbox is None or mailbox.password_encrypted is None:
        return None
    return {"address": mailbox.address, "password": secrets.decrypt(mailbox.password_encrypted)}
