"""The job queue: procrastinate on the same PostgreSQL.

One job per operation run, locked per stack so two runs never touch one stack at once.
Periodic tasks recover from crashes: jobs of dead workers are resumed, operations whose job
was never deferred are deferred again, and undecided requests expire. Others keep schedules:
backups per each service's policy, the restore-point catalogue in step with the repositories, and
mail domains' DNS records compared with what DNS serves.
"""

import logging
import uuid
from collections.abc import Callable
from functools import lru_cache

import procrastinate
from procrastinate import JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from sqlmodel import Session, col, select

from orchestrator.actors import SYSTEM, Actor
from orchestrator.auth import service as auth
from orchestrator.backup import catalogue as backup_catalogue
from orchestrator.backup import schedule as backup_schedule
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from orchestrator.database.core import database_url, session_scope
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.dcim import connection as dcim_connection
from orchestrator.dcim import sweep as dcim_sweep
from orchestrator.dr import campaigns
from orchestrator.errors import Unavailable
from orchestrator.images import pipeline as image_pipeline
from orchestrator.mail import status as mail_status
from orchestrator.operations import service as operations
from orchestrator.operations import uploads
from orchestrator.operations.models import FINISHED, Operation, OperationKind, OperationStatus
from orchestrator.ports import Adapters
from orchestrator.requests import service as requests
from orchestrator.services.models import Service
from orchestrator.workflows import commands, runner

log = logging.getLogger("tonle.queue")

RUN_OPERATION = "run_operation"
tasks = procrastinate.Blueprint()

_adapters: Adapters | None = None
_build_adapters: Callable[[], Adapters] | None = None


def set_adapter_builder(build: Callable[[], Adapters]) -> None:
    """How this process builds its adapters when it first runs an operation (bootstrap sets it)."""
    global _build_adapters
    _build_adapters = build


def set_adapters(adapters: Adapters | None) -> None:
    """Use these adapters for the operations this process runs (None: build them again)."""
    global _adapters
    _adapters = adapters


def current_adapters() -> Adapters:
    global _adapters
    if _adapters is None:
        if _build_adapters is None:
            raise RuntimeError("no adapters: the process must call orchestrator.bootstrap.bootstrap() first")
        _adapters = _build_adapters()
    return _adapters


def _retry_strategy() -> RetryStrategy:
    settings = get_settings()
    return RetryStrategy(max_attempts=settings.job_max_attempts, exponential_wait=settings.job_retry_wait_seconds)


@tasks.task(name=RUN_OPERATION, pass_context=True, retry=_retry_strategy())
def run_operation(context: JobContext, operation_id: str) -> str:
    job = context.job
    final_attempt = job.attempts + 1 >= get_settings().job_max_attempts
    outcome = runner.run(uuid.UUID(operation_id), adapters=current_adapters(), final_attempt=final_attempt)
    if outcome.status in FINISHED:
        _advance_campaign_of(uuid.UUID(operation_id))
    return str(outcome.status)


@tasks.periodic(cron="* * * * *", periodic_id="reconcile")
@tasks.task(name="reconcile_operations", queueing_lock="reconcile_operations")
def reconcile_operations(timestamp: int) -> None:
    """Defer queued operations that have no job (the process died between commit and defer)."""
    with session_scope() as session:
        stale = operations.stale_queued(session=session, older_than_seconds=60)
    for operation_id in stale:
        defer_operation(operation_id)


@tasks.periodic(cron="* * * * *", periodic_id="recover")
@tasks.task(name="recover_stalled_jobs", queueing_lock="recover_stalled_jobs")
async def recover_stalled_jobs(timestamp: int) -> None:
    await recover_stalled(get_app())


@tasks.periodic(cron="*/5 * * * *", periodic_id="expire")
@tasks.task(name="expire_requests", queueing_lock="expire_requests")
def expire_requests(timestamp: int) -> None:
    with unit_of_work() as uow:
        expired = requests.expire_overdue(session=uow.session, actor=SYSTEM)
        uow.commit()
    if expired:
        log.info("expired %d undecided request(s)", len(expired))


@tasks.periodic(cron="17 * * * *", periodic_id="purge_uploads")
@tasks.task(name="purge_uploads", queueing_lock="purge_uploads")
def purge_uploads(timestamp: int) -> None:
    """Uploads of failed operations nobody retried within the retention period, and the event
    stream leases of API processes that died."""
    with unit_of_work() as uow:
        uploads.purge_expired(session=uow.session)
        auth.purge_stale_stream_leases(session=uow.session)
        uow.commit()


@tasks.task(name="advance_campaign")
def advance_campaign(campaign_id: str) -> None:
    _advance_campaign(uuid.UUID(campaign_id))


@tasks.periodic(cron="* * * * *", periodic_id="advance_campaigns")
@tasks.task(name="advance_campaigns", queueing_lock="advance_campaigns")
def advance_campaigns(timestamp: int) -> None:
    """Start the next drills of open DR campaigns: the backstop of the start made when a drill
    finishes (a crash between the two loses nothing)."""
    with session_scope() as session:
        open_ones = campaigns.open_campaigns(session=session)
    for campaign_id in open_ones:
        _advance_campaign(campaign_id)


@tasks.periodic(cron="41 * * * *", periodic_id="schedule_drills")
@tasks.task(name="schedule_drills", queueing_lock="schedule_drills")
def schedule_drills(timestamp: int) -> None:
    """Drill services due per their backup policy, as the system, a bounded campaign at a time."""
    max_parallel = get_settings().scheduled_drills_max_parallel
    if max_parallel == 0:
        return
    with unit_of_work() as uow:
        campaign = campaigns.schedule_due(session=uow.session, max_parallel=max_parallel)
        uow.commit()
    if campaign is not None:
        _advance_campaign(campaign.id)


def defer_campaign(campaign_id: uuid.UUID) -> None:
    """Start a campaign's first drills in a worker, soon."""
    try:
        advance_campaign.configure(queueing_lock=f"campaign:{campaign_id}").defer(campaign_id=str(campaign_id))
    except AlreadyEnqueued:
        log.debug("campaign %s already has a waiting job", campaign_id)


def _advance_campaign(campaign_id: uuid.UUID) -> None:
    with unit_of_work() as uow:
        started = campaigns.advance(session=uow.session, campaign_id=campaign_id, start_drill=_start_drill)
        uow.commit()
    if started:
        log.info("campaign %s started %d drill(s)", campaign_id, len(started))


def _advance_campaign_of(operation_id: uuid.UUID) -> None:
    """A drill of a campaign finished: its slot is free for the next one. A failure here is left
    to the periodic advance; the operation's outcome stands."""
    try:
        with session_scope() as session:
            campaign_id = campaigns.campaign_of(session=session, operation_id=operation_id)
        if campaign_id is not None:
            _advance_campaign(campaign_id)
    except Exception:
        log.exception("advancing the campaign of operation %s failed; the periodic advance retries", operation_id)


def _start_drill(session: Session, actor: Actor, service_id: uuid.UUID) -> Operation:
    return commands.run_action(session=session, actor=actor, service_id=service_id, action=OperationKind.drill)


@tasks.periodic(cron="*/5 * * * *", periodic_id="backups")
@tasks.task(name="start_due_backups", queueing_lock="start_due_backups")
def start_due_backups(timestamp: int) -> None:
    """Backups per each service's policy, started as the system; misses are recorded on the policy."""
    outcomes = backup_schedule.run(now=utcnow(), start=_start_backup)
    if outcomes:
        log.info("backup schedule: %s", ", ".join(f"{type(o).__name__.lower()} {o.service_id}" for o in outcomes))


@tasks.periodic(cron="23 * * * *", periodic_id="mail_dns_status")
@tasks.task(name="check_mail_dns", queueing_lock="check_mail_dns")
def check_mail_dns(timestamp: int) -> None:
    """Every mail domain's DNS records against what DNS serves; drift recorded when it changes."""
    checked = mail_status.check_all()
    drifted = [status for status in checked if not status.ok]
    if checked:
        log.info("mail DNS status: %d domain(s) checked, %d drifted", len(checked), len(drifted))


@tasks.periodic(cron="*/15 * * * *", periodic_id="dcim_orphans")
@tasks.task(name="release_orphan_reservations", queueing_lock="release_orphan_reservations")
def release_orphan_reservations(timestamp: int) -> None:
    """DCIM reservations whose approval never committed (or whose service retired): released."""
    dcim = current_adapters().dcim
    if dcim is None:
        return
    try:
        with unit_of_work() as uow:
            released = dcim_sweep.release_orphans(session=uow.session, dcim=dcim, site=get_settings().dcim_site)
            uow.commit()
    except dcim_connection.NotConfigured:
        # The local data centre writes the DCIM's address once Nautobot is seeded, minutes after
        # the worker starts; the next sweep finds it.
        log.info("DCIM: orphan sweep skipped, the DCIM's address is not known yet")
        return
    except Unavailable as exc:
        log.warning("DCIM: orphan sweep skipped until the next one: %s", exc)
        return
    if released:
        log.warning("DCIM: released %d reservation(s) no service holds", len(released))


@tasks.periodic(cron="41 */6 * * *", periodic_id="restore_points")
@tasks.task(name="sync_restore_points", queueing_lock="sync_restore_points")
def sync_restore_points(timestamp: int) -> None:
    """Catalogue snapshots the hosts' own timers took, and mark the ones retention pruned."""
    backup_catalogue.sync_all(adapters=current_adapters(), on_event=lambda event: log.info("%s", event.message))


@tasks.task(
    name="build_image",
    pass_context=True,
    retry=RetryStrategy(
        max_attempts=image_pipeline.ATTEMPTS, exponential_wait=get_settings().job_retry_wait_seconds * 15
    ),
)
def build_image(context: JobContext, image_id: str) -> str:
    final_attempt = context.job.attempts + 1 >= image_pipeline.ATTEMPTS
    status = image_pipeline.run_build(
        image_id=uuid.UUID(image_id), adapters=current_adapters(), settings=get_settings(), final_attempt=final_attempt
    )
    return str(status)


def defer_image_build(image_id: uuid.UUID) -> int | None:
    """The build's job; None when it has one waiting already (asking twice builds once)."""
    try:
        # The lock keeps a second job of the same build (asked again while it runs) from running beside it.
        return build_image.configure(lock=f"image:{image_id}", queueing_lock=f"image:{image_id}").defer(
            image_id=str(image_id)
        )
    except AlreadyEnqueued:
        return None


@tasks.periodic(cron="17 3 * * 0", periodic_id="rebuild_images")
@tasks.task(name="rebuild_images", queueing_lock="rebuild_images")
def rebuild_images(timestamp: int) -> None:
    """Weekly, every image role at every site (security updates land in new images); builds
    asked for long ago whose job never came are deferred again."""
    for image_id in image_pipeline.request_scheduled(settings=get_settings()):
        defer_image_build(image_id)


def _start_backup(session: Session, service: Service, parameters: dict[str, object]) -> uuid.UUID:
    return commands.start(
        session=session, actor=SYSTEM, service=service, kind=OperationKind.backup, parameters=dict(parameters)
    ).id


async def recover_stalled(app: procrastinate.App) -> int:
    """Resume the jobs of workers that stopped sending heartbeats; return how many."""
    seconds = get_settings().stalled_after_seconds
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds)
    count = 0
    for job in stalled:
        operation_id = job.task_kwargs.get("operation_id")
        log.warning("job %s (%s %s) lost its worker; resuming it", job.id, job.task_name, operation_id)
        if operation_id:
            _note_worker_lost(uuid.UUID(str(operation_id)))
        await app.job_manager.retry_job(job)
        count += 1
    return count


def _note_worker_lost(operation_id: uuid.UUID) -> None:
    with unit_of_work() as uow:
        operation = uow.session.get(Operation, operation_id)
        if operation is None or operation.status != OperationStatus.running:
            return
        operations.add_event(
            session=uow.session,
            operation=operation,
            type="operation.worker_lost",
            message="the worker running this operation stopped responding; another worker resumes it",
            level="warning",
        )
        uow.commit()


def defer_operation(operation_id: uuid.UUID) -> None:
    with session_scope() as session:
        stack_name = session.exec(
            select(Service.stack_name)
            .join(Operation, col(Operation.service_id) == col(Service.id))
            .where(Operation.id == operation_id)
        ).one()
    try:
        job_id = run_operation.configure(lock=f"stack:{stack_name}", queueing_lock=f"operation:{operation_id}").defer(
            operation_id=str(operation_id)
        )
    except AlreadyEnqueued:
        log.debug("operation %s already has a waiting job", operation_id)
        return
    log.info("deferred job %s for operation %s on stack %s", job_id, operation_id, stack_name)


@lru_cache
def get_app() -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url()))
    app.add_tasks_from(tasks, namespace="tonle")
    return app
