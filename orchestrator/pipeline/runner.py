"""Runs one operation through its workflow steps, resuming at the first unfinished step.

Every step boundary is committed, so a crash at any point leaves the operation resumable,
and every change is visible to SSE clients as it happens.
"""

import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from orchestrator import secrets
from orchestrator.audit import service as audit
from orchestrator.auth.models import SYSTEM
from orchestrator.catalog import service as catalog
from orchestrator.cloud import hostkeys
from orchestrator.config import PROJECT_ROOT, get_settings
from orchestrator.database.core import session_scope
from orchestrator.ministry import service as ministries
from orchestrator.ministry.models import Ministry
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation, OperationKind, OperationStatus, StepStatus
from orchestrator.pipeline.stack_config import stack_config
from orchestrator.pipeline.steps import STEP_HANDLERS, StepContext
from orchestrator.pki import service as pki
from orchestrator.ports import Adapters, ProgressEvent, StackSpec, StepFailed
from orchestrator.requests import service as requests
from orchestrator.services import service as services
from orchestrator.services import uploads
from orchestrator.services.models import Service, ServiceStatus, ServiceUpload

log = logging.getLogger("tonle.pipeline")

# What the service becomes while an operation of each kind runs, and when it succeeds.
SERVICE_WHILE_RUNNING: dict[OperationKind, ServiceStatus] = {
    OperationKind.provision: ServiceStatus.provisioning,
    OperationKind.modify: ServiceStatus.modifying,
    OperationKind.decommission: ServiceStatus.decommissioning,
}
SERVICE_ON_SUCCESS: dict[OperationKind, ServiceStatus] = {
    OperationKind.provision: ServiceStatus.active,
    OperationKind.modify: ServiceStatus.active,
    OperationKind.decommission: ServiceStatus.retired,
}


@dataclass(frozen=True)
class Outcome:
    status: OperationStatus
    failed_step: str | None = None


class Interrupted(Exception):
    """A step raised something unexpected; the job is retried with backoff."""


def run(operation_id: uuid.UUID, *, adapters: Adapters, final_attempt: bool) -> Outcome:
    """Run the operation's remaining steps. Raises Interrupted for the queue to retry."""
    with session_scope() as session:
        operation = operations.lock(session=session, operation_id=operation_id)
        if operation.status in (OperationStatus.succeeded, OperationStatus.cancelled, OperationStatus.failed):
            log.info("operation %s is %s; nothing to do", operation_id, operation.status)
            return Outcome(operation.status, operation.failed_step)
        if operation.status == OperationStatus.running:
            operations.add_event(
                session=session,
                operation=operation,
                type="operation.resumed",
                message=f"resuming after an interruption (attempt {operation.attempts + 1})",
                level="warning",
            )
            operation.attempts += 1
            session.add(operation)
        else:
            operations.transition(session=session, actor=SYSTEM, operation=operation, target=OperationStatus.running)
        service = services.get(session=session, actor=SYSTEM, service_id=operation.service_id)
        ministry = ministries.get(session=session, ministry_id=service.ministry_id)
        context = _context(operation, service, ministry, adapters)
        pending = operations.pending_steps(operation)
        uploads = {name: uuid.UUID(value) for name, value in operation.parameters.get("uploads", {}).items()}
        session.commit()

    with materialized(uploads) as files:
        context.files = files
        for step in pending:
            _mark_step(operation_id, step, StepStatus.running)
            try:
                STEP_HANDLERS[step](context)
            except StepFailed as exc:
                return _fail(operation_id, step, public_message(str(exc)))
            except Exception as exc:
                # The details (exception, paths, trace) go to the server log under the
                # operation's id; the ministry sees that something broke and where to ask.
                error = f"{type(exc).__name__}: {exc}"
                shown = f"an internal error interrupted step {step}; operators can trace it by operation {operation_id}"
                if final_attempt:
                    log.exception("operation %s step %s failed on its last attempt", operation_id, step)
                    return _fail(operation_id, step, shown)
                log.warning(
                    "operation %s step %s interrupted, will retry: %s", operation_id, step, error, exc_info=True
                )
                _requeue(operation_id, step, shown)
                raise Interrupted(error) from exc
            _mark_step(operation_id, step, StepStatus.succeeded)
    return _succeed(operation_id, context.outputs)


def public_message(message: str) -> str:
    """A step's failure as ministries see it: where the orchestrator keeps things is not theirs
    to know (the server log has the full message)."""
    settings = get_settings()
    places = {
        str(settings.resolved_data_dir): "<data>",
        str(settings.playbooks_dir): "<playbooks>",
        str(settings.catalog_dir): "<catalog>",
        str(PROJECT_ROOT): "<tonle>",
        tempfile.gettempdir(): "<tmp>",
    }
    shown = message
    for place, name in sorted(places.items(), key=lambda item: -len(item[0])):
        if len(place) > 1:
            shown = shown.replace(place, name)
    if shown != message:
        log.info("step failure shown without paths; in full: %s", message)
    return shown


@contextmanager
def materialized(uploads: dict[str, uuid.UUID]) -> Iterator[dict[str, Path]]:
    """The operation's uploads as files in a private temporary folder, gone after the run."""
    if not uploads:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="tonle-upload-") as folder, session_scope() as session:
        files: dict[str, Path] = {}
        for name, upload_id in uploads.items():
            upload = session.get(ServiceUpload, upload_id)
            if upload is None:
                raise StepFailed(f"the uploaded file '{name}' ({upload_id}) is gone")
            # A name we make: the ministry's file name is kept for the record only, never
            # handed to Ansible (it once carried a template into the run).
            path = Path(folder) / f"upload-{len(files)}"
            path.write_bytes(upload.data)
            files[name] = path
        yield files


def _context(operation: Operation, service: Service, ministry: Ministry, adapters: Adapters) -> StepContext:
    settings = get_settings()
    offering = catalog.get_offering(service.offering_id)
    # A resize builds the stack for the plan it moves to.
    plan = catalog.get_plan(offering, operation.parameters.get("plan", service.plan))
    stack = StackSpec(
        name=service.stack_name,
        program=offering.stack_program,
        config=stack_config(
            settings=settings,
            ministry_code=ministry.code,
            service_id=str(service.id),
            request_id=str(service.request_id),
            offering=offering,
            plan=plan,
            parameters=service.parameters,
            ssh_public_key=service.ssh_public_key,
        ),
        tags={
            "ministry": ministry.code,
            "ministry_id": str(service.ministry_id),
            "service_id": str(service.id),
            "request_id": str(service.request_id),
        },
    )
    outputs: dict[str, Any] = dict(adapters.engine.outputs(stack.name))
    return StepContext(
        base_stack=stack,
        offering=offering,
        plan=plan,
        adapters=adapters,
        emit=_event_writer(operation.id),
        outputs=outputs,
        tenancy_request={
            "ministry_code": ministry.code,
            "ministry_name": ministry.name,
            "site_name": settings.primary_site,
        },
        label=f"{operation.kind}-{operation.id}",
        ssh_private_key=_ssh_private_key(service),
        secret_vars=_secret_vars(service),
        operation_parameters=dict(operation.parameters),
        restic_password=services.generated_secrets(service).get(services.RESTIC_PASSWORD),
        known_hosts=_pinned_host_keys(service, ministry, adapters, settings.primary_site, operation.id),
    )


def _pinned_host_keys(
    service: Service, ministry: Ministry, adapters: Adapters, site_name: str, operation_id: uuid.UUID
) -> Callable[[dict[str, dict[str, Any]]], str | None] | None:
    """known_hosts text for the stack's hosts: keys pinned with the service, and those of servers
    seen for the first time learned from their consoles and pinned (audited) before use."""
    source = adapters.host_keys
    if source is None:
        return None
    # Read now: the rows are detached from their session by the time a step calls back.
    service_id, ministry_code, emit = service.id, ministry.code, _event_writer(operation_id)

    def known_hosts(hosts: dict[str, dict[str, Any]]) -> str | None:
        with session_scope() as session:
            stored = session.get(Service, service_id)
            pins = dict(stored.host_keys) if stored is not None else {}
        pinning = hostkeys.pin(
            pins=pins,
            hosts=hosts,
            learn=lambda host, spec: source.learn(
                host=host, spec=spec, ministry_code=ministry_code, site_name=site_name, on_event=emit
            ),
        )
        if pinning.learned:
            with session_scope() as session:
                locked = services.lock(session=session, service_id=service_id)
                locked.host_keys = {**locked.host_keys, **{name: pinning.pins[name] for name in pinning.learned}}
                session.add(locked)
                for name in pinning.learned:
                    audit.record(
                        session=session,
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
                session.commit()
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


def _ssh_private_key(service: Service) -> str | None:
    return secrets.decrypt(service.ssh_private_key_encrypted) if service.ssh_private_key_encrypted else None


def _secret_vars(service: Service) -> dict[str, Any]:
    """What playbooks get only for the length of a run (see playbooks/README.md)."""
    found: dict[str, Any] = {"secrets": services.generated_secrets(service)}
    if service.tls_cert_pem and service.tls_key_encrypted:
        ca_pem = pki.ca_certificate()
        found["tls"] = {
            "cert_pem": service.tls_cert_pem,
            "key_pem": secrets.decrypt(service.tls_key_encrypted),
            "ca_pem": ca_pem,
        }
    return found


def _event_writer(operation_id: uuid.UUID) -> Any:
    def emit(event: ProgressEvent) -> None:
        with session_scope() as session:
            operation = session.get(Operation, operation_id)
            assert operation is not None
            operations.add_event(
                session=session,
                operation=operation,
                type=event.type,
                message=event.message,
                level=event.level,
                step=_current_step(operation),
                data=event.data,
            )
            session.commit()

    return emit


def _current_step(operation: Operation) -> str | None:
    return next((s.name for s in operation.step_list() if s.status == StepStatus.running), None)


def _mark_step(operation_id: uuid.UUID, step: str, status: StepStatus, error: str | None = None) -> None:
    with session_scope() as session:
        operation = operations.lock(session=session, operation_id=operation_id)
        operations.set_step(session=session, operation=operation, name=step, status=status, error=error)
        session.commit()


def _requeue(operation_id: uuid.UUID, step: str, error: str) -> None:
    with session_scope() as session:
        operation = operations.lock(session=session, operation_id=operation_id)
        operations.set_step(session=session, operation=operation, name=step, status=StepStatus.pending)
        operations.transition(
            session=session, actor=SYSTEM, operation=operation, target=OperationStatus.queued, reason=error
        )
        session.commit()


def _fail(operation_id: uuid.UUID, step: str, error: str) -> Outcome:
    with session_scope() as session:
        operation = operations.lock(session=session, operation_id=operation_id)
        operations.set_step(session=session, operation=operation, name=step, status=StepStatus.failed, error=error)
        operations.transition(
            session=session, actor=SYSTEM, operation=operation, target=OperationStatus.failed, reason=f"{step}: {error}"
        )
        service = services.lock(session=session, service_id=operation.service_id)
        # A failed day-2 action leaves the service running as it was; only changes to it fail it.
        if operation.kind in SERVICE_WHILE_RUNNING:
            services.transition(
                session=session,
                actor=SYSTEM,
                service=service,
                target=ServiceStatus.failed,
                reason=f"{operation.kind} failed at {step}",
            )
        if operation.request_id:  # an order, or an approved plan change
            requests.on_operation_finished(
                session=session, actor=SYSTEM, request_id=operation.request_id, succeeded=False
            )
        session.commit()
    return Outcome(OperationStatus.failed, step)


def _settle_plan(session: Session, service: Service, plan_id: str) -> None:
    plan = catalog.get_plan(catalog.get_offering(service.offering_id), plan_id)
    service.plan = plan.id
    service.quota_cost = dict(plan.quota_cost)
    session.add(service)
    requests.settle_held_quota(session=session, request_id=service.request_id, cost=dict(plan.quota_cost))


def _succeed(operation_id: uuid.UUID, outputs: dict[str, Any]) -> Outcome:
    with session_scope() as session:
        operation = operations.lock(session=session, operation_id=operation_id)
        service = services.lock(session=session, service_id=operation.service_id)
        if "endpoints" in outputs:
            service.endpoints = dict(outputs["endpoints"])
        if operation.kind in SERVICE_ON_SUCCESS:
            services.transition(
                session=session, actor=SYSTEM, service=service, target=SERVICE_ON_SUCCESS[operation.kind]
            )
        if operation.kind == OperationKind.modify:
            _settle_plan(session, service, operation.parameters["plan"])
        if operation.request_id:  # an order, or an approved plan change
            requests.on_operation_finished(
                session=session, actor=SYSTEM, request_id=operation.request_id, succeeded=True
            )
        if operation.kind == OperationKind.decommission:
            requests.release_quota_of(session=session, request_id=service.request_id)
        # Done for good: its uploads go (a failed run keeps them for a retry; see services/uploads.py).
        uploads.discard_for(session=session, operation=operation)
        operations.transition(session=session, actor=SYSTEM, operation=operation, target=OperationStatus.succeeded)
        session.commit()
    return Outcome(OperationStatus.succeeded)
