"""Day-2 changes to a service's mailboxes and aliases (beside `commands`: they start operations,
so they sit above `orchestrator.mail`, which the order and the service's creation use).

Each change is recorded (with its audit entry and, for mailboxes, the ministry's `mailboxes`
quota), then an `action` operation `sync-mailboxes` runs the offering's `mail_accounts` playbook,
which reads every account from the database when it runs: a retried or later sync converges on
what the rows say. None of these commits: the caller's unit of work does.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.catalog import service as catalog
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from orchestrator.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from orchestrator.mail import domain as mail_domain
from orchestrator.mail import passwords
from orchestrator.mail.models import (
    MailAlias,
    MailAliasCreate,
    Mailbox,
    MailboxCreate,
    MailboxStatus,
    MailDomain,
)
from orchestrator.ministry import service as ministries
from orchestrator.operations.models import Operation
from orchestrator.requests import service as requests
from orchestrator.services import service as services
from orchestrator.services.models import Service
from orchestrator.workflows import commands

SYNC_ACTION = "sync-mailboxes"


@dataclass(frozen=True)
class MailChange:
    """A recorded change and the operation that applies it; `password` only for a new or reset mailbox."""

    operation: Operation
    mailbox: Mailbox | None = None
    alias: MailAlias | None = None
    password: str | None = field(default=None, repr=False)


def list_mailboxes(
    *, session: Session, actor: Actor, service_id: uuid.UUID, include_system: bool = False
) -> Sequence[Mailbox]:
    _domain_of(session=session, actor=actor, service_id=service_id)
    query = select(Mailbox).where(Mailbox.service_id == service_id)
    if not include_system:
        query = query.where(col(Mailbox.system).is_(False))
    return session.exec(query.order_by(col(Mailbox.address), col(Mailbox.created_at))).all()


def list_aliases(*, session: Session, actor: Actor, service_id: uuid.UUID) -> Sequence[MailAlias]:
    _domain_of(session=session, actor=actor, service_id=service_id)
    return session.exec(
        select(MailAlias).where(MailAlias.service_id == service_id).order_by(col(MailAlias.address))
    ).all()


def add_mailbox(*, session: Session, actor: Actor, service_id: uuid.UUID, data: MailboxCreate) -> MailChange:
    """A new mailbox within the plan's count, charged to the ministry's `mailboxes` quota; its
    password is in the answer and nowhere else."""
    service, domain = _changeable(session=session, actor=actor, service_id=service_id)
    # Whoever adds a mailbox is shown its password: credentials go only to the ministry's staff.
    policy.require(actor, policy.Action.reveal_credentials, ministry_id=service.ministry_id)
    address = mail_domain.check_address(str(data.address), domain=domain.domain, field="address")
    why = mail_domain.full_name_problem(data.full_name)
    if why is not None:
        raise InvalidInput(f"full_name {why}", field="full_name")
    if _alias(session=session, service_id=service_id, address=address) is not None:
        raise InvalidInput(f"'{address}' is an alias; remove the alias first", field="address")
    existing = _mailboxes_at(session=session, service_id=service_id, address=address)
    if any(m.status == MailboxStatus.active for m in existing):
        raise Conflict(f"mailbox '{address}' exists", current_state=MailboxStatus.active)
    if existing:
        # Its maildir is still on the server; a new owner of the address would read the old one's mail.
        kept = max(m.retain_until for m in existing if m.retain_until is not None)
        raise Conflict(
            f"mailbox '{address}' was removed; its mail is kept until {kept:%Y-%m-%d}, so the address "
            "cannot be given to a new mailbox",
            current_state=MailboxStatus.removed,
        )
    offering = catalog.get_offering(service.offering_id)
    plan = catalog.get_plan(offering, service.plan)
    limit = mail_domain.mailbox_limit(plan)
    if _active_count(session=session, service_id=service_id) >= limit:
        raise InvalidInput(f"plan '{plan.id}' allows {limit} mailboxes and the service has them all", field="address")
    cost = mail_domain.mailbox_cost(1)
    try:
        ministries.reserve(session=session, ministry_id=service.ministry_id, cost=cost)
    except QuotaExceeded as exceeded:
        raise QuotaExceeded(exceeded.detail, field="address", **exceeded.extra) from None
    requests.add_held_quota(session=session, request_id=service.request_id, cost=cost)
    mailbox, password = mail_domain.new_mailbox(
        session=session,
        service_id=service.id,
        ministry_id=service.ministry_id,
        address=address,
        full_name=data.full_name,
        quota_mb=mail_domain.mailbox_quota_mb(plan),
    )
    mailbox.password_encrypted = None  # shown in the answer, once
    session.flush()
    _audit(session=session, actor=actor, mailbox=mailbox, action="created", detail={"full_name": data.full_name})
    return MailChange(
        operation=_sync(session=session, actor=actor, service=service), mailbox=mailbox, password=password
    )


def remove_mailbox(*, session: Session, actor: Actor, service_id: uuid.UUID, address: str) -> MailChange:
    """No more logins or deliveries; the mail stays on the server until the retention date, then
    the next sync deletes it. The quota is given back at once."""
    service, _ = _changeable(session=session, actor=actor, service_id=service_id)
    mailbox = _user_mailbox(session=session, service_id=service_id, address=address)
    forwarding = _aliases_to(session=session, service_id=service_id, address=mailbox.address)
    if forwarding:
        raise Conflict(
            f"alias(es) {', '.join(forwarding)} deliver to '{mailbox.address}'; change or remove them first",
            current_state=MailboxStatus.active,
        )
    now = utcnow()
    mailbox.status = MailboxStatus.removed
    mailbox.removed_at = now
    mailbox.retain_until = now + timedelta(days=get_settings().mail_removed_retention_days)
    mailbox.password_encrypted = None
    session.add(mailbox)
    requests.release_held_quota(session=session, request_id=service.request_id, cost=mail_domain.mailbox_cost(1))
    _audit(
        session=session,
        actor=actor,
        mailbox=mailbox,
        action="removed",
        detail={"retain_until": mailbox.retain_until.isoformat()},
        from_state=MailboxStatus.active,
        to_state=MailboxStatus.removed,
    )
    return MailChange(operation=_sync(session=session, actor=actor, service=service), mailbox=mailbox)


def reset_mailbox(*, session: Session, actor: Actor, service_id: uuid.UUID, address: str) -> MailChange:
    """A new password for the mailbox, in the answer only; the old one stops working at the sync."""
    service, _ = _changeable(session=session, actor=actor, service_id=service_id)
    policy.require(actor, policy.Action.reveal_credentials, ministry_id=service.ministry_id)
    mailbox = _user_mailbox(session=session, service_id=service_id, address=address)
    password = passwords.generate()
    mailbox.password_hash = passwords.dovecot_hash(password)
    mailbox.password_encrypted = None
    session.add(mailbox)
    _audit(session=session, actor=actor, mailbox=mailbox, action="password_reset")
    return MailChange(
        operation=_sync(session=session, actor=actor, service=service), mailbox=mailbox, password=password
    )


def add_alias(*, session: Session, actor: Actor, service_id: uuid.UUID, data: MailAliasCreate) -> MailChange:
    service, domain = _changeable(session=session, actor=actor, service_id=service_id)
    address = mail_domain.check_address(str(data.address), domain=domain.domain, field="address")
    if any(
        m.status == MailboxStatus.active for m in _mailboxes_at(session=session, service_id=service_id, address=address)
    ):
        raise InvalidInput(f"'{address}' is a mailbox; an alias cannot take its address", field="address")
    if _alias(session=session, service_id=service_id, address=address) is not None:
        raise Conflict(f"alias '{address}' exists", current_state="exists")
    destinations: list[str] = []
    for index, given in enumerate(data.destinations):
        where = f"destinations.{index}"
        destination = str(given).strip().lower()
        if destination == address:
            raise InvalidInput("an alias cannot deliver to itself", field=where)
        if destination in destinations:
            raise InvalidInput(f"'{destination}' is listed twice", field=where)
        if destination.rpartition("@")[2] == domain.domain and not _delivers_here(
            session=session, service_id=service_id, address=destination
        ):
            raise InvalidInput(f"'{destination}' is neither a mailbox nor an alias of {domain.domain}", field=where)
        destinations.append(destination)
    alias = MailAlias(service_id=service.id, address=address, destinations=destinations)
    session.add(alias)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        entity="mail_alias",
        entity_id=alias.id,
        ministry_id=service.ministry_id,
        action="created",
        detail={"service": str(service.id), "address": address, "destinations": destinations},
    )
    return MailChange(operation=_sync(session=session, actor=actor, service=service), alias=alias)


def remove_alias(*, session: Session, actor: Actor, service_id: uuid.UUID, address: str) -> MailChange:
    service, _ = _changeable(session=session, actor=actor, service_id=service_id)
    alias = _alias(session=session, service_id=service_id, address=address.strip().lower())
    if alias is None:
        raise NotFound(f"alias '{address}' not found")
    forwarding = _aliases_to(session=session, service_id=service_id, address=alias.address)
    if forwarding:
        raise Conflict(
            f"alias(es) {', '.join(forwarding)} deliver to '{alias.address}'; change or remove them first",
            current_state="exists",
        )
    session.delete(alias)
    audit.record(
        session=session,
        actor=actor,
        entity="mail_alias",
        entity_id=alias.id,
        ministry_id=service.ministry_id,
        action="removed",
        detail={"service": str(service.id), "address": alias.address, "destinations": list(alias.destinations)},
    )
    return MailChange(operation=_sync(session=session, actor=actor, service=service), alias=alias)


def _domain_of(*, session: Session, actor: Actor, service_id: uuid.UUID) -> MailDomain:
    services.get(session=session, actor=actor, service_id=service_id)  # another ministry's: 404
    domain = session.get(MailDomain, service_id)
    if domain is None:
        raise NotFound(f"service {service_id} has no mail domain")
    return domain


def _changeable(*, session: Session, actor: Actor, service_id: uuid.UUID) -> tuple[Service, MailDomain]:
    """The service locked and checked for a sync (404, then 403, then 409), and its domain."""
    domain = _domain_of(session=session, actor=actor, service_id=service_id)
    commands.check_action(session=session, actor=actor, service_id=service_id, action=SYNC_ACTION)
    return services.lock(session=session, service_id=service_id), domain


def _sync(*, session: Session, actor: Actor, service: Service) -> Operation:
    return commands.run_action(session=session, actor=actor, service_id=service.id, action=SYNC_ACTION)


def _mailboxes_at(*, session: Session, service_id: uuid.UUID, address: str) -> Sequence[Mailbox]:
    return session.exec(select(Mailbox).where(Mailbox.service_id == service_id, Mailbox.address == address)).all()


def _user_mailbox(*, session: Session, service_id: uuid.UUID, address: str) -> Mailbox:
    """The live mailbox at `address` the ministry may change (404 if none; 409 for a probe's)."""
    wanted = address.strip().lower()
    mailbox = next(
        (
            m
            for m in _mailboxes_at(session=session, service_id=service_id, address=wanted)
            if m.status == MailboxStatus.active
        ),
        None,
    )
    if mailbox is None:
        raise NotFound(f"mailbox '{address}' not found")
    if mailbox.system:
        raise Conflict(f"'{wanted}' is the data centre's health-check mailbox", current_state="system")
    return mailbox


def _alias(*, session: Session, service_id: uuid.UUID, address: str) -> MailAlias | None:
    return session.exec(
        select(MailAlias).where(MailAlias.service_id == service_id, MailAlias.address == address)
    ).first()


def _aliases_to(*, session: Session, service_id: uuid.UUID, address: str) -> list[str]:
    aliases = session.exec(select(MailAlias).where(MailAlias.service_id == service_id)).all()
    return sorted(a.address for a in aliases if address in a.destinations)


def _delivers_here(*, session: Session, service_id: uuid.UUID, address: str) -> bool:
    """Whether mail to `address` of the domain reaches someone: a ministry's live mailbox or an alias."""
    if _alias(session=session, service_id=service_id, address=address) is not None:
        return True
    return any(
        m.status == MailboxStatus.active and not m.system
        for m in _mailboxes_at(session=session, service_id=service_id, address=address)
    )


def _active_count(*, session: Session, service_id: uuid.UUID) -> int:
    return len(
        session.exec(
            select(Mailbox.id).where(
                Mailbox.service_id == service_id,
                Mailbox.status == MailboxStatus.active,
                col(Mailbox.system).is_(False),
            )
        ).all()
    )


def _audit(
    *,
    session: Session,
    actor: Actor,
    mailbox: Mailbox,
    action: str,
    detail: dict[str, str] | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
) -> None:
    audit.record(
        session=session,
        actor=actor,
        entity="mailbox",
        entity_id=mailbox.id,
        ministry_id=mailbox.ministry_id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        detail={"service": str(mailbox.service_id), "address": mailbox.address, **(detail or {})},
    )
