"""The mail domain an order asks for: its mailboxes checked at submission, then made (with the DKIM
key and the health check's probe mailboxes) in the transaction that creates the service."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from orchestrator import secrets
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.catalog import validation
from orchestrator.catalog.models import Offering, Plan
from orchestrator.database.columns import utcnow
from orchestrator.errors import InvalidInput
from orchestrator.mail import dkim, passwords
from orchestrator.mail.models import PROBE_RECIPIENT, PROBE_SENDER, Mailbox, MailboxStatus, MailDomain
from orchestrator.services import service as services

INITIAL_MAILBOXES = "initial_mailboxes"
MAILBOXES = "mailboxes"  # the plan's size (a limit) and the ministry's quota resource (a count)
MAILBOX_QUOTA_MB = "mailbox_quota_mb"
DEFAULT_MAILBOX_QUOTA_MB = 5120
SYSTEM_LOCAL_PARTS = (PROBE_SENDER, PROBE_RECIPIENT)


@dataclass(frozen=True)
class RequestedMailbox:
    address: str
    full_name: str


def domain_of(offering: Offering, parameters: Mapping[str, Any]) -> str | None:
    """The order's mail domain, lower case, or None for an offering without one."""
    if offering.mail_domain_from is None:
        return None
    value = parameters.get(offering.mail_domain_from)
    return value.lower() if isinstance(value, str) else None


def mailbox_limit(plan: Plan) -> int:
    limit = plan.sizes.get(MAILBOXES, 0)
    return limit if isinstance(limit, int) else 0


def mailbox_quota_mb(plan: Plan) -> int:
    size = plan.sizes.get(MAILBOX_QUOTA_MB, DEFAULT_MAILBOX_QUOTA_MB)
    return size if isinstance(size, int) else DEFAULT_MAILBOX_QUOTA_MB


def check_address(address: str, *, domain: str, field: str) -> str:
    """The address, lower case, if it is a user's address of the domain; else 422 naming `field`."""
    normalised = address.strip().lower()
    local, _, at = normalised.rpartition("@")
    if at != domain or not local:
        raise InvalidInput(f"'{address}' is not an address of the mail domain {domain}", field=field)
    if local in SYSTEM_LOCAL_PARTS:
        raise InvalidInput(f"'{address}' is reserved for the data centre's health check", field=field)
    return normalised


def full_name_problem(full_name: str) -> str | None:
    """Why a mailbox's name cannot be used, or None. It becomes a field of Dovecot's passwd-file,
    whose fields a colon ends and whose entries a line ends."""
    if ":" in full_name:
        return "must not contain ':'"
    return validation.text_problem(full_name)


def check_order(*, offering: Offering, plan: Plan, parameters: Mapping[str, Any]) -> list[RequestedMailbox]:
    """The order's first mailboxes, checked: each under the mail domain, none twice, no more than
    the plan allows. Raises InvalidInput naming `parameters.initial_mailboxes.<i>.address`."""
    domain = domain_of(offering, parameters)
    if domain is None:
        return []
    items: Sequence[Mapping[str, Any]] = parameters.get(INITIAL_MAILBOXES) or []
    problems: list[dict[str, str]] = []
    wanted: list[RequestedMailbox] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        field = f"parameters.{INITIAL_MAILBOXES}.{index}.address"
        try:
            address = check_address(str(item.get("address", "")), domain=domain, field=field)
        except InvalidInput as error:
            problems.append({"field": field, "message": error.detail})
            continue
        if address in seen:
            problems.append({"field": field, "message": f"'{address}' is listed twice"})
            continue
        seen.add(address)
        full_name = str(item.get("full_name", ""))
        why = full_name_problem(full_name)
        if why is not None:
            problems.append({"field": f"parameters.{INITIAL_MAILBOXES}.{index}.full_name", "message": why})
            continue
        wanted.append(RequestedMailbox(address=address, full_name=full_name))
    limit = mailbox_limit(plan)
    if len(items) > limit:
        problems.append(
            {
                "field": f"parameters.{INITIAL_MAILBOXES}",
                "message": f"plan '{plan.id}' allows {limit} mailboxes; the order lists {len(items)}",
            }
        )
    if problems:
        raise InvalidInput(problems[0]["message"], field=problems[0]["field"], errors=problems)
    return wanted


def mailbox_cost(count: int) -> dict[str, int]:
    """What `count` mailboxes take from the ministry's `mailboxes` quota."""
    return {MAILBOXES: count}


def create_for_service(
    *,
    session: Session,
    actor: Actor,
    offering: Offering,
    plan: Plan,
    service_id: uuid.UUID,
    ministry_id: uuid.UUID,
    parameters: Mapping[str, Any],
) -> MailDomain | None:
    """The service's mail domain with a new DKIM key, the order's mailboxes (their passwords kept
    encrypted until the ministry is shown them) and the two probe mailboxes."""
    domain = domain_of(offering, parameters)
    if domain is None:
        return None
    key = dkim.generate(now=utcnow())
    row = MailDomain(
        service_id=service_id,
        domain=domain,
        dkim_selector=key.selector,
        dkim_private_key_encrypted=secrets.encrypt(key.private_key_pem),
        dkim_public_key=key.public_key,
    )
    session.add(row)
    quota_mb = mailbox_quota_mb(plan)
    wanted = check_order(offering=offering, plan=plan, parameters=parameters)
    for mailbox in wanted:
        new_mailbox(
            session=session,
            service_id=service_id,
            ministry_id=ministry_id,
            address=mailbox.address,
            full_name=mailbox.full_name,
            quota_mb=quota_mb,
        )
    for local in SYSTEM_LOCAL_PARTS:
        new_mailbox(
            session=session,
            service_id=service_id,
            ministry_id=ministry_id,
            address=f"{local}@{domain}",
            full_name="Tonle health check",
            quota_mb=100,
            system=True,
        )
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service_id,
        ministry_id=ministry_id,
        action="mail_domain_created",
        detail={
            "domain": domain,
            "dkim_selector": key.selector,
            "mailboxes": [m.address for m in wanted],
        },
    )
    return row


def new_mailbox(
    *,
    session: Session,
    service_id: uuid.UUID,
    ministry_id: uuid.UUID,
    address: str,
    full_name: str,
    quota_mb: int,
    system: bool = False,
) -> tuple[Mailbox, str]:
    """A live mailbox with a generated password: the row (password kept encrypted until shown) and
    the password."""
    password = passwords.generate()
    mailbox = Mailbox(
        service_id=service_id,
        ministry_id=ministry_id,
        address=address,
        full_name=full_name,
        quota_mb=quota_mb,
        password_hash=passwords.dovecot_hash(password),
        password_encrypted=secrets.encrypt(password),
        system=system,
        status=MailboxStatus.active,
    )
    session.add(mailbox)
    return mailbox, password


def reveal_credentials(*, session: Session, actor: Actor, service_id: uuid.UUID) -> dict[str, str]:
    """The service's credentials (`services.reveal_credentials`, which refuses a second showing)
    and, for a mail service, each of the order's mailboxes by address with its password."""
    shown = services.reveal_credentials(session=session, actor=actor, service_id=service_id)
    mailboxes = reveal_passwords(session=session, service_id=service_id)
    if mailboxes:
        service = services.get(session=session, actor=actor, service_id=service_id)
        audit.record(
            session=session,
            actor=actor,
            entity="service",
            entity_id=service_id,
            ministry_id=service.ministry_id,
            action="mailbox_passwords_revealed",
            detail={"addresses": sorted(mailboxes)},
        )
    return {**shown, **mailboxes}


def reveal_passwords(*, session: Session, service_id: uuid.UUID) -> dict[str, str]:
    """Address → password of the ministry's mailboxes whose password was never shown; the
    plaintext is cleared, so this gives each password once. Probe mailboxes keep theirs."""
    waiting = session.exec(
        select(Mailbox)
        .where(
            Mailbox.service_id == service_id,
            Mailbox.status == MailboxStatus.active,
            col(Mailbox.system).is_(False),
            col(Mailbox.password_encrypted).is_not(None),
        )
        .order_by(col(Mailbox.address))
    ).all()
    shown: dict[str, str] = {}
    for mailbox in waiting:
        assert mailbox.password_encrypted is not None
        shown[mailbox.address] = secrets.decrypt(mailbox.password_encrypted)
        mailbox.password_encrypted = None
        session.add(mailbox)
    return shown
