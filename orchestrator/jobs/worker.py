"""Running a worker process: takes operation jobs and the periodic recovery tasks."""

import asyncio
import importlib
import logging
import time
import types
from concurrent.futures import ThreadPoolExecutor

import procrastinate

from orchestrator.config import get_settings

log = logging.getLogger("tonle.worker")

# Threads beyond the operation slots: the periodic tasks are synchronous too, and must not wait
# behind ten long operations for a thread.
SPARE_THREADS = 4
# Jobs due later (a retry's backoff) and jobs freed by another's stack lock get no notification;
# the worker looks for them this often (new jobs arrive at once through LISTEN/NOTIFY).
FETCH_POLLING_SECONDS = 1.0


def heartbeat_options() -> dict[str, float]:
    stalled = get_settings().stalled_after_seconds
    # Beat several times per stall window so one slow beat never looks like death.
    return {"update_heartbeat_interval": max(1.0, stalled / 4), "stalled_worker_timeout": float(stalled)}


def job_threads(concurrency: int) -> ThreadPoolExecutor:
    """The threads synchronous jobs run in. procrastinate runs them in the event loop's default
    executor, which asyncio sizes by CPU count (6 threads on 2 cores): without this pool, a
    worker of concurrency 10 ran six operations and left four fetched jobs waiting for a thread,
    the queueing that made most of an order's non-step time when ten arrived together."""
    return ThreadPoolExecutor(max_workers=concurrency + SPARE_THREADS, thread_name_prefix="tonle-job")


def load_lazy_modules() -> None:
    """Load the Pulumi provider SDK's lazily imported modules now, in one thread. Python 3.11's
    LazyLoader is not thread-safe: two stack programs starting together in a fresh worker could
    see `pulumi_openstack.images` half loaded and fail their plan with an AttributeError."""
    try:
        import pulumi_openstack
    except ImportError:  # the no-op engine's deployments need no provider SDK
        return
    for name in dir(pulumi_openstack):
        module = getattr(pulumi_openstack, name)
        if isinstance(module, types.ModuleType) and module.__name__.startswith("pulumi_openstack."):
            # Any attribute but the few introspection ones runs the deferred import.
            getattr(module, "__all__", None)


def warm_up() -> float:
    """Do before the first job what every first operation of a fresh worker did at once, each
    waiting for the others on 2 cores (seconds of an order's time, none of them in a step): the
    catalogue, the ORM's mappers, and, for engines that run them, the stack programs with the
    provider SDK. Returns the seconds it took."""
    from sqlalchemy.orm import configure_mappers

    from orchestrator.catalog import service as catalog
    from orchestrator.engines import engine_choice
    from orchestrator.engines.embedded import STACK_PROGRAMS

    started = time.monotonic()
    configure_mappers()
    offerings = catalog.catalog()
    if engine_choice(get_settings()) != "noop":
        load_lazy_modules()
        for program in sorted({offering.stack_program for offering in offerings.values()}):
            try:
                importlib.import_module(f"{STACK_PROGRAMS}.{program}")
            except Exception:
                # Its orders fail at plan, naming the error, as they would without a warm-up;
                # the other offerings' orders are no reason to stop this worker.
                log.exception("stack program %s does not load", program)
    return time.monotonic() - started


def run_worker(app: procrastinate.App, *, concurrency: int | None = None, name: str = "tonle-worker") -> None:
    """Take jobs until stopped; `app` is what `orchestrator.bootstrap.bootstrap()` returned."""
    settings = get_settings()
    slots = concurrency or settings.worker_concurrency
    # Before any job: no secret a crashed run left on disk survives a restart.
    from orchestrator.ansible.runner import clean_up_at_start

    clean_up_at_start()
    warmed = warm_up()
    log.info(
        "worker %s starting: concurrency %s, engine %s, runner %s (ready in %.1f s)",
        name,
        slots,
        settings.engine,
        settings.ansible,
        warmed,
    )

    heartbeat = heartbeat_options()

    async def work() -> None:
        asyncio.get_running_loop().set_default_executor(job_threads(slots))
        # The app's async pool is opened on this loop; sync tasks defer through it.
        async with app.open_async():
            await app.run_worker_async(
                name=name,
                concurrency=slots,
                wait=True,
                fetch_job_polling_interval=FETCH_POLLING_SECONDS,
                update_heartbeat_interval=heartbeat["update_heartbeat_interval"],
                stalled_worker_timeout=heartbeat["stalled_worker_timeout"],
            )

    asyncio.run(work())
