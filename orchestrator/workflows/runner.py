"""Walks one operation through its workflow's steps, resuming at the first unfinished step.

The runner knows no operation kind: what each kind does is its `Workflow`. Every step boundary
is committed, so a crash at any point leaves the operation resumable, and every change is
visible to SSE clients as it happens.
"""

import logging
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.actors import SYSTEM
from orchestrator.config import PROJECT_ROOT, get_settings
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.ministry import service as ministries
from orchestrator.operations import service as operations
from orchestrator.operations import uploads
from orchestrator.operations.models import FINISHED, OperationStatus, StepStatus
from orchestrator.ports import Adapters, StepFailed
from orchestrator.requests import service as requests
from orchestrator.services import service as services
from orchestrator.services.models import Service, ServiceUpload
from orchestrator.workflows import context as contexts
from orchestrator.workflows import get as get_workflow
from orchestrator.workflows.context import StepContext
from orchestrator.workflows.shape import Finish, WaitingFor, Workflow

log = logging.getLogger("tonle.pipeline")


@dataclass(frozen=True)
class Outcome:
    status: OperationStatus
    failed_step: str | None = None


class Interrupted(Exception):
    """A step raised something unexpected; the job is retried with backoff."""


def run(operation_id: uuid.UUID, *, adapters: Adapters, final_attempt: bool) -> Outcome:
    """Run the operation's remaining steps. Raises Interrupted for the queue to retry."""
    with unit_of_work() as uow:
        session = uow.session
        operation = operations.lock(session=session, operation_id=operation_id)
        if operation.status in FINISHED or operation.status == OperationStatus.waiting:
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
        workflow = get_workflow(operation.kind)
        service = services.get(session=session, actor=SYSTEM, service_id=operation.service_id)
        ministry = ministries.get(session=session, ministry_id=service.ministry_id)
        ctx = contexts.build(
            session=session,
            operation=operation,
            service=service,
            ministry=ministry,
            adapters=adapters,
            settings=get_settings(),
        )
        pending = operations.pending_steps(operation)
        upload_ids = {name: uuid.UUID(value) for name, value in operation.parameters.get("uploads", {}).items()}
        uow.commit()

    with materialized(upload_ids) as files:
        ctx.files = files
        for name in pending:
            step = workflow.step(name)
            _mark_step(operation_id, name, StepStatus.running)
            try:
                step.run(ctx)
            except WaitingFor as waiting:
                return _park(operation_id, name, waiting)
            except StepFailed as exc:
                return _fail(workflow, ctx, name, public_message(str(exc)))
            except Exception as exc:
                # The details (exception, paths, trace) go to the server log under the
                # operation's id; the ministry sees that something broke and where to ask.
                error = f"{type(exc).__name__}: {exc}"
                shown = f"an internal error interrupted step {name}; operators can trace it by operation {operation_id}"
                if final_attempt:
                    log.exception("operation %s step %s failed on its last attempt", operation_id, name)
                    return _fail(workflow, ctx, name, shown)
                log.warning(
                    "operation %s step %s interrupted, will retry: %s", operation_id, name, error, exc_info=True
                )
                _requeue(operation_id, name, shown)
                raise Interrupted(error) from exc
            _mark_step(operation_id, name, StepStatus.succeeded)
    return _succeed(workflow, operation_id, ctx.outputs)


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
def materialized(upload_ids: dict[str, uuid.UUID]) -> Iterator[dict[str, Path]]:
    """The operation's uploads as files in a private temporary folder, gone after the run."""
    if not upload_ids:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="tonle-upload-") as folder:
        files: dict[str, Path] = {}
        # Read and let go of the connection: the steps may run for many minutes.
        with unit_of_work() as uow:
            for name, upload_id in upload_ids.items():
                upload = uow.session.get(ServiceUpload, upload_id)
                if upload is None:
                    raise StepFailed(f"the uploaded file '{name}' ({upload_id}) is gone")
                # A name we make: the ministry's file name is kept for the record only, never
                # handed to Ansible (it once carried a template into the run).
                path = Path(folder) / f"upload-{len(files)}"
                path.write_bytes(upload.data)
                files[name] = path
        yield files


def _mark_step(operation_id: uuid.UUID, step: str, status: StepStatus, error: str | None = None) -> None:
    with unit_of_work() as uow:
        operation = operations.lock(session=uow.session, operation_id=operation_id)
        operations.set_step(session=uow.session, operation=operation, name=step, status=status, error=error)
        uow.commit()


def _park(operation_id: uuid.UUID, step: str, waiting: WaitingFor) -> Outcome:
    """The step waits for a signal: the operation holds its service but no worker."""
    with unit_of_work() as uow:
        operation = operations.lock(session=uow.session, operation_id=operation_id)
        operations.set_step(
            session=uow.session, operation=operation, name=step, status=StepStatus.waiting, waiting_for=waiting.signal
        )
        operations.transition(
            session=uow.session,
            actor=SYSTEM,
            operation=operation,
            target=OperationStatus.waiting,
            reason=f"{step} waits for '{waiting.signal}': {waiting.message}",
        )
        uow.commit()
    return Outcome(OperationStatus.waiting)


def _requeue(operation_id: uuid.UUID, step: str, error: str) -> None:
    with unit_of_work() as uow:
        operation = operations.lock(session=uow.session, operation_id=operation_id)
        operations.set_step(session=uow.session, operation=operation, name=step, status=StepStatus.pending)
        operations.transition(
            session=uow.session, actor=SYSTEM, operation=operation, target=OperationStatus.queued, reason=error
        )
        uow.commit()


def _clean_up(workflow: Workflow, ctx: StepContext, failed_step: str) -> None:
    """Steps marked `always` that come after the failed one still run (cleanup); what they fail
    at is recorded, never raised over the failure that matters."""
    names = workflow.step_names
    for step in workflow.steps[names.index(failed_step) + 1 :]:
        if not step.always:
            continue
        _mark_step(ctx.operation_id, step.name, StepStatus.running)
        try:
            step.run(ctx)
        except Exception as exc:
            log.warning("operation %s cleanup step %s failed: %s", ctx.operation_id, step.name, exc, exc_info=True)
            _mark_step(ctx.operation_id, step.name, StepStatus.failed, public_message(str(exc)))
        else:
            _mark_step(ctx.operation_id, step.name, StepStatus.succeeded)


def _fail(workflow: Workflow, ctx: StepContext, step: str, error: str) -> Outcome:
    with unit_of_work() as uow:
        session = uow.session
        operation = operations.lock(session=session, operation_id=ctx.operation_id)
        operations.set_step(session=session, operation=operation, name=step, status=StepStatus.failed, error=error)
        uow.commit()
    _clean_up(workflow, ctx, step)
    with unit_of_work() as uow:
        session = uow.session
        operation = operations.lock(session=session, operation_id=ctx.operation_id)
        operations.transition(
            session=session, actor=SYSTEM, operation=operation, target=OperationStatus.failed, reason=f"{step}: {error}"
        )
        if workflow.service_on_failure is not None:
            service = services.lock(session=session, service_id=operation.service_id)
            services.transition(
                session=session,
                actor=SYSTEM,
                service=service,
                target=workflow.service_on_failure,
                reason=f"{operation.kind} failed at {step}",
            )
        if operation.request_id:  # an order, or an approved plan change
            requests.on_operation_finished(
                session=session, actor=SYSTEM, request_id=operation.request_id, succeeded=False
            )
        uow.commit()
    return Outcome(OperationStatus.failed, step)


def _succeed(workflow: Workflow, operation_id: uuid.UUID, outputs: Mapping[str, Any]) -> Outcome:
    with unit_of_work() as uow:
        session = uow.session
        operation = operations.lock(session=session, operation_id=operation_id)
        service = services.lock(session=session, service_id=operation.service_id)
        _keep_outputs(service, outputs)
        if workflow.service_on_success is not None:
            services.transition(session=session, actor=SYSTEM, service=service, target=workflow.service_on_success)
        if workflow.on_success is not None:
            workflow.on_success(Finish(session=session, operation=operation, service=service, outputs=outputs))
        if operation.request_id:  # an order, or an approved plan change
            requests.on_operation_finished(
                session=session, actor=SYSTEM, request_id=operation.request_id, succeeded=True
            )
        # Done for good: its uploads go (a failed run keeps them for a retry; see operations/uploads.py).
        uploads.discard_for(session=session, operation=operation)
        operations.transition(session=session, actor=SYSTEM, operation=operation, target=OperationStatus.succeeded)
        uow.commit()
    return Outcome(OperationStatus.succeeded)


def _keep_outputs(service: Service, outputs: Mapping[str, Any]) -> None:
    """Endpoints are shown to the ministry; credentials are kept encrypted and revealed once."""
    if "endpoints" in outputs:
        service.endpoints = dict(outputs["endpoints"])
    credentials = {str(name): str(value) for name, value in dict(outputs.get("credentials") or {}).items()}
    if credentials:
        services.keep_stack_credentials(service=service, credentials=credentials)
