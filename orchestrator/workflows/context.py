"""What a step works with: the operation's inputs, the adapters, its event sink, and the
stack's outputs as they are filled in. Built once per run from the database (`build`)."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlmodel import Session

from orchestrator import secrets
from orchestrator.actors import SYSTEM
from orchestrator.audit import service as audit
from orchestrator.catalog import service as catalog
from orchestrator.catalog.models import Offering
from orchestrator.cloud import hostkeys
from orchestrator.config import Settings
from orchestrator.database.columns import utcnow
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.images import selection as image_selection
from orchestrator.mail import dns_records, projection
from orchestrator.mail.models import MailDomain
from orchestrator.ministry.models import Ministry
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation, StepStatus
from orchestrator.pki import service as pki
from orchestrator.pki.issue import valid_until
from orchestrator.ports import Adapters, EventSink, ProgressEvent, StackSpec
from orchestrator.services import service as services
from orchestrator.services.models import Service
from orchestrator.workflows.inputs import MailInputs, Platform, ServiceInputs
from orchestrator.workflows.shape import WaitingFor

KnownHosts = Callable[[dict[str, dict[str, Any]]], str | None]


@dataclass
class StepContext:
    operation_id: uuid.UUID
    inputs: ServiceInputs
    adapters: Adapters
    emit: EventSink
    outputs: dict[str, Any]  # stack outputs, filled by `apply`, read by later steps
    label: str = ""  # names artifacts of this operation's runs
    ssh_private_key: str | None = field(default=None, repr=False)
    secret_vars: dict[str, Any] = field(default_factory=dict, repr=False)  # tls, secrets, backup
    restic_password: str | None = field(default=None, repr=False)
    files: dict[str, Path] = field(default_factory=dict)  # uploads the run needs, as local files
    # The hosts' pinned SSH host keys as known_hosts text, learned on first use.
    known_hosts: KnownHosts | None = None
    signals: dict[str, Any] = field(default_factory=dict)  # payloads of the signals received so far
    _stack: StackSpec | None = None

    @property
    def base_stack(self) -> StackSpec:
        """The stack without the site and provider keys (enough to destroy it by name)."""
        return StackSpec(
            name=self.inputs.stack_name,
            program=self.inputs.offering.stack_program,
            config=self.inputs.stack_config(),
            tags=self.inputs.stack_tags(),
        )

    @property
    def stack(self) -> StackSpec:
        """The full stack spec. The first step that needs it makes sure the ministry's project
        exists at the site, so a cloud error there is that step's failure."""
        if self._stack is None:
            if self.inputs.platform.image_reason:
                platform = self.inputs.platform
                self.emit(
                    ProgressEvent(
                        type="image.selected",
                        message=f"new servers boot from {platform.image}: {platform.image_reason}",
                        data={"image": platform.image, "site": platform.site_name},
                    )
                )
            provider = self.adapters.tenancy.ensure(
                ministry_code=self.inputs.ministry_code,
                ministry_name=self.inputs.ministry_name,
                site_name=self.inputs.platform.site_name,
                on_event=self.emit,
            )
            base = self.base_stack
            self._stack = replace(base, config={**base.config, **provider})
        return self._stack

    def wait_for(self, signal: str, message: str) -> Any:
        """The payload of `signal` if it has arrived; otherwise park the operation until it does."""
        if signal in self.signals:
            return self.signals[signal]
        raise WaitingFor(signal, message)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A transaction of the step's own, committed when the block ends without error. Steps
        that change rows must be safe to run twice: a crash can come before the step is marked done."""
        with unit_of_work() as uow:
            yield uow.session
            uow.commit()


def build(
    *,
    session: Session,
    operation: Operation,
    service: Service,
    ministry: Ministry,
    adapters: Adapters,
    settings: Settings,
) -> StepContext:
    offering = catalog.get_offering(service.offering_id)
    # A resize builds the stack for the plan it moves to.
    plan = catalog.get_plan(offering, operation.parameters.get("plan", service.plan))
    mail = projection.mail_domain(session=session, service_id=service.id)
    inputs = ServiceInputs(
        ministry_id=ministry.id,
        ministry_code=ministry.code,
        ministry_name=ministry.name,
        service_id=service.id,
        request_id=service.request_id,
        stack_name=service.stack_name,
        offering=offering,
        plan=plan,
        parameters=dict(service.parameters),
        platform=platform_at(
            session=session, settings=settings, platform=Platform.from_settings(settings), offering=offering
        ),
        ssh_public_key=service.ssh_public_key,
        action=operation.parameters.get("action"),
        mail=_mail_inputs(mail, service) if mail is not None else None,
    )
    emit = event_writer(operation.id)
    return StepContext(
        operation_id=operation.id,
        inputs=inputs,
        adapters=adapters,
        emit=emit,
        outputs=dict(adapters.engine.outputs(service.stack_name)),
        label=f"{operation.kind}-{operation.id}",
        ssh_private_key=secrets.decrypt(service.ssh_private_key_encrypted)
        if service.ssh_private_key_encrypted
        else None,
        secret_vars=_secret_vars(session, service, mail),
        restic_password=services.generated_secrets(service).get(services.RESTIC_PASSWORD),
        known_hosts=_pinned_host_keys(service, inputs, adapters, emit),
        signals=dict(operation.parameters.get("signals") or {}),
    )


def platform_at(
    *, session: Session, settings: Settings, platform: Platform, offering: Offering, site: str | None = None
) -> Platform:
    """The platform of a stack at `site` (the platform's own by default), its servers' image
    chosen for that site: the offering's current baked image there, else the base image."""
    site_name = site or platform.site_name
    choice = image_selection.choose(session=session, settings=settings, offering=offering, site=site_name)
    return replace(platform, site_name=site_name, image=choice.name, image_reason=choice.reason)


def event_writer(operation_id: uuid.UUID) -> EventSink:
    """An event sink that writes each event to the operation's stream at once (SSE clients see it)."""

    def emit(event: ProgressEvent) -> None:
        with unit_of_work() as uow:
            operation = uow.session.get(Operation, operation_id)
            assert operation is not None
            running = next((s.name for s in operation.step_list() if s.status == StepStatus.running), None)
            operations.add_event(
                session=uow.session,
                operation=operation,
                type=event.type,
                message=event.message,
                level=event.level,
                step=running,
                data=event.data,
            )
            uow.commit()

    return emit


def _ssh_private_key(service: Service) -> str | None:
    return secrets.decrypt(service.ssh_private_key_encrypted) if service.ssh_private_key_encrypted else None


def _mail_inputs(mail: MailDomain, service: Service) -> MailInputs:
    return MailInputs(
        domain=mail.domain,
        dkim_selector=mail.dkim_selector,
        dkim_public_key=mail.dkim_public_key,
        mta_sts_policy_id=dns_records.mta_sts_policy_id(mail.domain),
        mta_sts_until=valid_until(service.tls_cert_pem).isoformat() if service.tls_cert_pem else None,
    )


def _secret_vars(session: Session, service: Service, mail: MailDomain | None) -> dict[str, Any]:
    """What playbooks get only for the length of a run (see playbooks/README.md)."""
    found: dict[str, Any] = {"secrets": services.generated_secrets(service)}
    if mail is not None:
        # Read now, not when the change was asked for: a retried sync applies the rows as they are.
        found["mail"] = projection.secret_var(session=session, domain=mail, parameters=service.parameters, now=utcnow())
    if service.tls_cert_pem and service.tls_key_encrypted:
        found["tls"] = {
            "cert_pem": service.tls_cert_pem,
            "key_pem": secrets.decrypt(service.tls_key_encrypted),
            "ca_pem": pki.ca_certificate(),
        }
    return found


def _pinned_host_keys(
    service: Service, inputs: ServiceInputs, adapters: Adapters, emit: EventSink
) -> KnownHosts | None:
    """known_hosts text for the stack's hosts: keys pinned with the service, and those of servers
    seen for the first time learned from their consoles and pinned (audited) before use."""
    source = adapters.host_keys
    if source is None:
        return None
    service_id = service.id

    def known_hosts(hosts: dict[str, dict[str, Any]]) -> str | None:
        with unit_of_work() as uow:
            stored = uow.session.get(Service, service_id)
            pins = dict(stored.host_keys) if stored is not None else {}
        pinning = hostkeys.pin(
            pins=pins,
            hosts=hosts,
            learn=lambda host, spec: source.learn(
                host=host,
                spec=spec,
                ministry_code=inputs.ministry_code,
                site_name=inputs.platform.site_name,
                on_event=emit,
            ),
        )
        if pinning.learned:
            with unit_of_work() as uow:
                locked = services.lock(session=uow.session, service_id=service_id)
                locked.host_keys = {**locked.host_keys, **{name: pinning.pins[name] for name in pinning.learned}}
                uow.session.add(locked)
                for name in pinning.learned:
                    audit.record(
                        session=uow.session,
                        actor=SYSTEM,
                        entity="service",
                        entity_id=service_id,
                        ministry_id=locked.ministry_id,
                        action="host_keys_replaced" if name in pinning.replaced else "host_keys_pinned",
                        detail={
                            "host": name,
                            "server_id": pinning.pins[name]["server_id"],
                            "fingerprints": [hostkeys.fingerprint(key) for key in pinning.pins[name]["keys"]],
                        },
                    )
                uow.commit()
        for name in pinning.replaced:
            emit(
                ProgressEvent(
                    type="ssh.host_keys",
                    message=f"host {name} is a new server; its keys replace the ones pinned for the old one",
                    level="warning",
                    data={"host": name},
                )
            )
        text = hostkeys.known_hosts(pinning.pins, hosts)
        source.verify(hosts=hosts, known_hosts=text)
        return text

    return known_hosts
