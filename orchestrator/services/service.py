"""Deployed services: creation from an approved request, lookups, status, day-2 requests."""

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from secrets import token_urlsafe
from typing import Any

from sqlmodel import Session, col, select

from orchestrator import policy, secrets
from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.catalog import service as catalog
from orchestrator.database.columns import utcnow
from orchestrator.database.queries import locked, page
from orchestrator.errors import Conflict, NotFound
from orchestrator.ministry.models import Ministry
from orchestrator.pki import service as pki
from orchestrator.pki.issue import KeyAndCert
from orchestrator.services import keys
from orchestrator.services.models import Service, ServiceStatus
from orchestrator.services.states import SERVICE_STATES

# Backups of a retired service are kept this long unless its plan says otherwise.
DEFAULT_RETENTION = timedelta(days=90)

RESTIC_PASSWORD = "restic_password"


def stack_name_for(*, ministry_code: str, offering_id: str, service_id: uuid.UUID) -> str:
    return f"{ministry_code}-{offering_id}-{service_id.hex[:8]}"


def create(
    *,
    session: Session,
    actor: Actor,
    ministry_id: uuid.UUID,
    request_id: uuid.UUID,
    offering_id: str,
    offering_version: int,
    plan: str,
    parameters: dict[str, Any],
    quota_cost: dict[str, int],
) -> Service:
    """The service an approved order asked for, with its keys, secrets and certificate, `provisioning`."""
    ministry = session.get(Ministry, ministry_id)
    assert ministry is not None
    service_id = uuid.uuid4()
    name = str(parameters.get("name") or parameters.get("domain") or offering_id)
    stack_name = stack_name_for(ministry_code=ministry.code, offering_id=offering_id, service_id=service_id)
    key = keys.generate(comment=f"tonle-{stack_name}")
    offering = catalog.get_offering(offering_id)
    generated = {name: token_urlsafe(24) for name in offering.secrets}
    if offering.backup_tier != "none":
        # Encrypts the backups in the DR bucket: without it nobody, Tonle included, can read them.
        generated[RESTIC_PASSWORD] = token_urlsafe(32)
    tls = _certificate(
        session=session, names_from=offering.tls_names_from, prefixes=offering.tls_name_prefixes, parameters=parameters
    )
    service = Service(
        id=service_id,
        ministry_id=ministry_id,
        request_id=request_id,
        offering_id=offering_id,
        offering_version=offering_version,
        plan=plan,
        name=name,
        status=ServiceStatus.provisioning,
        stack_name=stack_name,
        parameters=parameters,
        quota_cost=quota_cost,
        ssh_public_key=key.public_openssh,
        ssh_private_key_encrypted=secrets.encrypt(key.private_openssh),
        generated_secrets_encrypted=secrets.encrypt(json.dumps(generated)) if generated else None,
        tls_cert_pem=tls.cert_pem if tls else None,
        tls_key_encrypted=secrets.encrypt(tls.key_pem) if tls else None,
    )
    session.add(service)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action="created",
        to_state=service.status,
        detail={"stack": service.stack_name, "request": str(request_id)},
    )
    return service


def tls_names(names_from: list[str], parameters: dict[str, Any], prefixes: list[str] | None = None) -> list[str]:
    """The names a service answers on, from the parameters the offering points at, in order.
    With `prefixes` (a mail domain's `mail.`, `mta-sts.`, ...), `<prefix>.<name>` instead of each name."""
    names: list[str] = []
    for key in names_from:
        value = parameters.get(key)
        for name in value if isinstance(value, list) else [value]:
            if not isinstance(name, str) or not name:
                continue
            for served in [f"{prefix}.{name}" for prefix in prefixes] if prefixes else [name]:
                if served not in names:
                    names.append(served)
    return names


def _certificate(
    *, session: Session, names_from: list[str], prefixes: list[str], parameters: dict[str, Any]
) -> KeyAndCert | None:
    names = tls_names(names_from, parameters, prefixes)
    return pki.certificate_for(session=session, names=names) if names else None


def generated_secrets(service: Service) -> dict[str, str]:
    if not service.generated_secrets_encrypted:
        return {}
    decoded: dict[str, str] = json.loads(secrets.decrypt(service.generated_secrets_encrypted))
    return decoded


def stack_credentials(service: Service) -> dict[str, str]:
    """What the service's stack made for the ministry to use (e.g. S3 keys), kept encrypted."""
    if not service.credentials_encrypted:
        return {}
    decoded: dict[str, str] = json.loads(secrets.decrypt(service.credentials_encrypted))
    return decoded


def keep_stack_credentials(*, service: Service, credentials: dict[str, str]) -> None:
    """Store the stack's credentials encrypted. They are shown with the generated secrets, once:
    a stack that makes new ones later does not open that door again."""
    if credentials != stack_credentials(service):
        service.credentials_encrypted = secrets.encrypt(json.dumps(credentials))


def get(*, session: Session, actor: Actor, service_id: uuid.UUID) -> Service:
    service = session.get(Service, service_id)
    if service is None or not policy.can_see(actor, service.ministry_id):
        raise NotFound(f"service {service_id} not found")
    return service


def lock(*, session: Session, service_id: uuid.UUID, actor: Actor | None = None) -> Service:
    """The service row locked for update; with an actor, one of another ministry is not found."""
    service = locked(session, Service, service_id)
    if service is None or (actor is not None and not policy.can_see(actor, service.ministry_id)):
        raise NotFound(f"service {service_id} not found")
    return service


def list_services(
    *,
    session: Session,
    actor: Actor,
    status: ServiceStatus | None = None,
    offering_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Service], int]:
    query = select(Service)
    if not policy.sees_all_ministries(actor):
        query = query.where(Service.ministry_id == actor.ministry_id)
    if status is not None:
        query = query.where(Service.status == status)
    if offering_id is not None:
        query = query.where(Service.offering_id == offering_id)
    return page(session, query, col(Service.created_at).desc(), limit=limit, offset=offset)


def transition(*, session: Session, actor: Actor, service: Service, target: ServiceStatus, reason: str = "") -> None:
    SERVICE_STATES.check(service.status, target)
    previous = service.status
    service.status = target
    service.updated_at = utcnow()
    if target == ServiceStatus.retired:
        service.retired_at = utcnow()
        service.retain_backups_until = service.retired_at + DEFAULT_RETENTION
    session.add(service)
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action="status_changed",
        from_state=previous,
        to_state=target,
        detail={"reason": reason} if reason else None,
    )


def reveal_credentials(*, session: Session, actor: Actor, service_id: uuid.UUID) -> dict[str, str]:
    """The ministry's credentials of the service, once; afterwards only rotation gives new ones."""
    service = lock(session=session, service_id=service_id, actor=actor)
    policy.require(actor, policy.Action.reveal_credentials, ministry_id=service.ministry_id)
    if service.status != ServiceStatus.active:
        raise Conflict(f"credentials are available once the service is active; it is {service.status}")
    if service.credentials_revealed_at is not None:
        raise Conflict(
            f"the credentials were shown on {service.credentials_revealed_at:%Y-%m-%d %H:%M} UTC "
            f"to {service.credentials_revealed_by}; they are not shown twice",
            current_state="revealed",
        )
    offering = catalog.get_offering(service.offering_id)
    everything = generated_secrets(service)
    shown = {name: everything[name] for name in offering.credentials if name in everything}
    shown.update(stack_credentials(service))
    service.credentials_revealed_at = utcnow()
    service.credentials_revealed_by = actor.username
    session.add(service)
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action="credentials_revealed",
        detail={"names": sorted(shown)},
    )
    return shown
