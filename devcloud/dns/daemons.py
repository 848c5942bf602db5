"""Designate's daemons, started in the one order that loses no message.

oslo.messaging drops a message published before its consumer's queue exists. So: central
first, and wait until RabbitMQ shows a consumer on its queue; only then `designate-manage
pool update` (an RPC to central); then worker and mini-DNS; then producer, whose periodic
tasks call central and the worker; the API last, so no request arrives before all are there.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from devcloud.dns import layout as L
from devcloud.dns import venv
from devcloud.dns.layout import Layout
from devcloud.dns.waiting import DnsError, failure, wait_for

if TYPE_CHECKING:
    from devcloud.context import Context

#: process name -> (Designate service, RabbitMQ queue its consumer listens on or None)
RPC_SERVICES: dict[str, tuple[str, str | None]] = {
    L.CENTRAL: ("central", "central"),
    L.WORKER: ("worker", "worker"),
    L.MDNS: ("mdns", None),  # answers DNS (AXFR to BIND), no RPC
    L.PRODUCER: ("producer", "producer"),
}
API_URL = f"http://{L.HOST}:{L.API_PORT}/"


def queue_consumers(ctx: Context, lay: Layout, queue: str) -> int:
    """Consumers on `queue` in the cloud's RabbitMQ; 0 when unknown or unreachable."""
    try:
        result = subprocess.run(
            venv.shim(lay, "consumers", ctx.transport_url, queue),
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return 0
    try:
        return int(result.stdout.strip()) if result.returncode == 0 else 0
    except ValueError:
        return 0


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((L.HOST, port), timeout=1):
            return True
    except OSError:
        return False


#: Straight to loopback, whatever http_proxy the environment sets.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api_answers() -> bool:
    """The API's version document (no token needed) comes back."""
    try:
        with _DIRECT.open(API_URL, timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def launch(ctx: Context, lay: Layout, process: str) -> None:
    if process == L.API:
        ctx.start_process(L.API, venv.shim(lay, "api", str(lay.designate_etc), L.HOST, str(L.API_PORT)))
    else:
        service, _ = RPC_SERVICES[process]
        ctx.start_process(process, venv.shim(lay, "run", service, str(lay.designate_conf)))


def wait_ready(ctx: Context, lay: Layout, process: str, timeout: float) -> None:
    if process == L.API:
        wait_for(ctx, L.API, f"HTTP on {API_URL}", api_answers, timeout=timeout, interval=0.5)
        return
    _, queue = RPC_SERVICES[process]
    if queue is None:
        wait_for(ctx, process, f"TCP port {L.MDNS_PORT}", lambda: port_open(L.MDNS_PORT), timeout=timeout)
        return
    wait_for(
        ctx,
        process,
        f"a consumer on RabbitMQ queue {queue!r}",
        lambda: queue_consumers(ctx, lay, queue) > 0,
        timeout=timeout,
        interval=0.5,
    )


def start(ctx: Context, lay: Layout, *processes: str, timeout: float = 90) -> None:
    """Start `processes` together (each takes seconds to import Designate), then wait until
    each is ready: consuming its RabbitMQ queue, listening, or answering HTTP."""
    for process in processes:
        launch(ctx, lay, process)
    for process in processes:
        wait_ready(ctx, lay, process, timeout)


def pool_update(ctx: Context, lay: Layout) -> None:
    """Load pools.yaml into Designate (through central; idempotent)."""
    argv = [
        str(lay.venv_bin("designate-manage")),
        "--config-file",
        str(lay.designate_conf),
        "pool",
        "update",
        "--file",
        str(lay.pools_yaml),
    ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise failure(ctx, L.CENTRAL, "designate-manage pool update got no answer from central in 120 s") from exc
    if result.returncode != 0:
        err = failure(ctx, L.CENTRAL, "designate-manage pool update failed")
        raise DnsError(f"{(result.stdout + result.stderr)[-3000:]}\n{err}")
