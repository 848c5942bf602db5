"""`up`, `down`, `status` of the DCIM part; called by `python -m devcloud` and by
`python -m devcloud.dcim`.

Nautobot needs nothing of the cloud (its own PostgreSQL and Redis), and its first migration is
slow, so `python -m devcloud up` starts it first and in the background (`start_background`: a
`python -m devcloud.dcim up` process of its own) and does not wait for it; `status` shows when
it answers, `wait` blocks until it does (tests).
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from devcloud.dcim import layout as L
from devcloud.dcim import nautobot, postgres, redis, venv
from devcloud.dcim.common import DcimError
from devcloud.dcim.layout import Layout
from devcloud.services.common import port_open

if TYPE_CHECKING:
    from devcloud.context import Context

_PREPARE_LOCK = threading.Lock()


def _ports(lay: Layout) -> dict[str, int]:
    return {L.POSTGRES: lay.pg_port, L.REDIS: lay.redis_port, L.WEB: lay.web_port}


def _check_ports_free(ctx: Context, lay: Layout) -> None:
    for name, port in _ports(lay).items():
        if not ctx.process_alive(name) and port_open(port):
            raise DcimError(
                f"{L.HOST}:{port} (for {name}) is already in use by a process devcloud did not start from "
                f"{ctx.data_dir}: another devcloud running? See `ss -ltnp 'sport = :{port}'`"
            )


def prepare_venv(ctx: Context, lay: Layout) -> None:
    """Nautobot's venv, installed or refreshed. Idempotent."""
    with _PREPARE_LOCK:
        if venv.ensure(ctx, lay):
            ctx.stop_process(L.WEB)  # new code in the venv: the next `up` starts it afresh


def _running(ctx: Context, lay: Layout) -> bool:
    return (
        all(ctx.process_alive(name) for name in L.PROCESSES)
        and lay.credentials.exists()
        and nautobot.api_answers(lay, nautobot.token_key(lay))
    )


def up(ctx: Context, lay: Layout | None = None) -> dict[str, float | str]:
    """Bring Nautobot up, seeded; does nothing when it answers already. Returns the seconds
    of each stage and how the schema was obtained (`schema`: current, restored or migrated)."""
    lay = lay or Layout.of(ctx)
    if venv.current(lay) and _running(ctx, lay):
        ctx.progress("dcim", f"already running ({lay.url})")
        return {"schema": "running"}
    timings: dict[str, float | str] = {}
    t0 = time.monotonic()

    def mark(stage: str) -> None:
        nonlocal t0
        timings[stage] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()

    _check_ports_free(ctx, lay)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="redis") as pool:
        # On a fresh machine Redis's package waits ~30 s for apt, behind the cloud's own packages:
        # Nautobot's venv is installed, PostgreSQL started and the schema migrated meanwhile
        # (a migration needs no cache: `nautobot.schema`).
        redis_started = pool.submit(_start_redis, ctx, lay)
        prepare_venv(ctx, lay)
        ctx.progress("dcim", f"PostgreSQL on {L.HOST}:{lay.pg_port}")
        postgres.start(ctx, lay)
        postgres.ensure_database(lay)
        mark("prepare")
        nautobot.write_config(lay)
        timings["schema"] = nautobot.schema(ctx, lay, redis_up=redis.answers(lay))
        mark("migrate")
        redis_started.result()
    mark("redis")
    ctx.progress("dcim", f"Nautobot web server on {lay.url}, loading while the seed runs")
    nautobot.start_web(ctx, lay)
    nautobot.seed(ctx, lay)
    mark("seed")
    nautobot.wait_for_web(ctx, lay)
    mark("web")
    ctx.progress("dcim", f"ready: {lay.url} (token in {lay.credentials})")
    return timings


def _start_redis(ctx: Context, lay: Layout) -> None:
    redis.ensure_installed(ctx)
    ctx.progress("dcim", f"Redis on {L.HOST}:{lay.redis_port}")
    redis.start(ctx, lay)


def start_background(ctx: Context) -> None:
    """`python -m devcloud.dcim up` as a devcloud process of its own (`logs/dcim-bootstrap.log`),
    so `python -m devcloud up` returns without waiting for Nautobot's migration."""
    lay = Layout.of(ctx)
    if venv.current(lay) and _running(ctx, lay):
        return
    ctx.start_process(
        L.BOOTSTRAP,
        [sys.executable, "-m", "devcloud.dcim", "up", "--data-dir", str(ctx.data_dir)],
        cwd=ctx.repo_root,
    )
    ctx.progress(
        "dcim", f"Nautobot starting in the background (logs/{L.BOOTSTRAP}.log); `status` shows when it answers"
    )


def wait(ctx: Context, timeout: float = 900) -> None:
    """Block until Nautobot answers with the token (or the background bootstrap failed)."""
    lay = Layout.of(ctx)
    deadline = time.monotonic() + timeout
    while not (lay.credentials.exists() and nautobot.api_answers(lay, nautobot.token_key(lay))):
        if not ctx.process_alive(L.BOOTSTRAP) and not ctx.process_alive(L.WEB):
            raise DcimError(f"Nautobot is not starting: see {ctx.log_path(L.BOOTSTRAP)}")
        if time.monotonic() > deadline:
            raise DcimError(f"Nautobot did not answer within {timeout:.0f} s: see {ctx.log_path(L.BOOTSTRAP)}")
        time.sleep(2)


def down(ctx: Context) -> None:
    """Stop what `up` started: the bootstrap (if still running), the web server, Redis, and
    PostgreSQL last (SIGTERM: a fast shutdown; SIGKILL after the timeout)."""
    for name in (L.BOOTSTRAP, *reversed(L.PROCESSES)):
        if ctx.process_alive(name):
            ctx.progress("dcim", f"stopping {name}")
        ctx.stop_process(name, timeout=20)


def status(ctx: Context) -> dict[str, bool]:
    """Process name -> running; plus whether Nautobot's API answers with the token."""
    lay = Layout.of(ctx)
    result = {name: ctx.process_alive(name) for name in L.PROCESSES}
    result["dcim-api-answers"] = result[L.WEB] and nautobot.api_answers(lay, nautobot.token_key(lay))
    return result
