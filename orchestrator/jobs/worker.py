"""Running a worker process: takes operation jobs and the periodic recovery tasks."""

import logging

import procrastinate

from orchestrator.config import get_settings

log = logging.getLogger("tonle.worker")


def heartbeat_options() -> dict[str, float]:
    stalled = get_settings().stalled_after_seconds
    # Beat several times per stall window so one slow beat never looks like death.
    return {"update_heartbeat_interval": max(1.0, stalled / 4), "stalled_worker_timeout": float(stalled)}


def run_worker(app: procrastinate.App, *, concurrency: int | None = None, name: str = "tonle-worker") -> None:
    """Take jobs until stopped; `app` is what `orchestrator.bootstrap.bootstrap()` returned."""
    settings = get_settings()
    # Before any job: no secret a crashed run left on disk survives a restart.
    from orchestrator.ansible.runner import clean_up_at_start

    clean_up_at_start()
    # run_worker opens the app's async pool; sync tasks defer through it on the worker's loop.
    log.info(
        "worker %s starting: concurrency %s, engine %s, runner %s",
        name,
        concurrency or settings.worker_concurrency,
        settings.engine,
        settings.ansible,
    )
    app.run_worker(
        name=name,
        concurrency=concurrency or settings.worker_concurrency,
        wait=True,
        **heartbeat_options(),
    )
