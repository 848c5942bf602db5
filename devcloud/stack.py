"""The order in which the cloud comes up and goes down, and what "up" means for status."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from devcloud import clouds_yaml, ports, procs
from devcloud.context import Context, Endpoint
from devcloud.services import (
    cinder,
    glance,
    keystone,
    mariadb,
    neutron,
    nova,
    packages,
    placement,
    rabbitmq,
    resources,
    swift,
    venv,
)
from devcloud.services.common import StageError, http_ok, service_password

#: (process name, URL that must answer, or None for "pid alive" only), in start order.
CHECKS: list[tuple[str, str | None]] = [
    (mariadb.NAME, None),
    (rabbitmq.EPMD, None),
    (rabbitmq.NAME, None),
    (keystone.NAME, f"http://127.0.0.1:{ports.KEYSTONE}/v3"),
    (placement.NAME, f"http://127.0.0.1:{ports.PLACEMENT}/"),
    (glance.NAME, f"http://127.0.0.1:{ports.GLANCE}/"),
    (neutron.NAME, f"http://127.0.0.1:{ports.NEUTRON}/"),
    *((name, None) for name in swift.PROCESSES),
    (swift.PROXY, f"http://127.0.0.1:{ports.SWIFT_PROXY}/healthcheck"),
    (nova.API, f"http://127.0.0.1:{ports.NOVA}/"),
    *((name, None) for name in nova.DAEMONS),
    *((name, None) for name in nova.compute_names()),
    (cinder.API, f"http://127.0.0.1:{ports.CINDER}/"),
    *((name, None) for name in cinder.DAEMONS),
]

#: Service users and catalog entries, registered before any daemon starts (nova-conductor
#: needs its user at start-up, and every API needs its user to validate tokens).
SERVICES: list[tuple[str, str, str, str]] = [
    # user, service type, service name, endpoint URL
    ("placement", "placement", "placement", f"http://127.0.0.1:{ports.PLACEMENT}"),
    ("glance", "image", "glance", f"http://127.0.0.1:{ports.GLANCE}"),
    ("neutron", "network", "neutron", f"http://127.0.0.1:{ports.NEUTRON}"),
    ("nova", "compute", "nova", f"http://127.0.0.1:{ports.NOVA}/v2.1"),
    (
        "cinder",
        "block-storage",
        "cinder",
        f"http://127.0.0.1:{ports.CINDER}/v3/%(project_id)s",
    ),
    (
        "cinder",
        "volumev3",
        "cinderv3",
        f"http://127.0.0.1:{ports.CINDER}/v3/%(project_id)s",
    ),
    (
        "swift",
        "object-store",
        "swift",
        f"http://127.0.0.1:{ports.SWIFT_PROXY}/v1/AUTH_%(project_id)s",
    ),
]


def _optional(name: str) -> ModuleType | None:
    """`devcloud.machines` / `devcloud.dns`, if that part exists and is not switched off
    with `DEVCLOUD_WITHOUT=machines,dns` (to debug the OpenStack services alone)."""
    without = {p.strip() for p in os.environ.get("DEVCLOUD_WITHOUT", "").split(",")}
    if name.rsplit(".", 1)[-1] in without:
        return None
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _hook(module: ModuleType | None, name: str) -> Callable[..., Any] | None:
    fn = getattr(module, name, None) if module else None
    return fn if callable(fn) else None


@contextmanager
def _stage(ctx: Context, stage: str, what: str) -> Iterator[None]:
    t0 = time.monotonic()
    ctx.progress(stage, f"{what} ...")
    yield
    ctx.progress(stage, f"done in {time.monotonic() - t0:.1f}s")


def _in_parallel(ctx: Context, stages: list[tuple[str, Callable[[Context], None]]]) -> None:
    """Run independent stages on a few threads (mostly waiting on MariaDB and imports);
    re-raise the first failure once all have finished, so no stage is left half-done."""

    def run(stage: str, fn: Callable[[Context], None]) -> None:
        with _stage(ctx, stage, "database, config, processes"):
            fn(ctx)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(run, stage, fn) for stage, fn in stages]
    for future in futures:
        future.result()


def status(ctx: Context, quiet: bool = False) -> bool:
    """Print each process's state; True if all are up."""
    all_up = True
    for name, url in CHECKS:
        pid = procs.read_pid(ctx, name)
        if pid is None:
            state, ok = "stopped", False
        elif url is not None and not http_ok(url):
            state, ok = f"running (pid {pid}) but {url} does not answer", False
        else:
            state, ok = f"up (pid {pid})", True
        all_up &= ok
        if not quiet:
            print(f"{name:24} {state}")
    dns_status = _hook(_optional("devcloud.dns"), "status")
    if dns_status is not None:
        for name, ok in dns_status(ctx).items():
            all_up &= bool(ok)
            if not quiet:
                print(f"{name:24} {'up' if ok else 'down'}")
    if not quiet:
        memory = procs.memory_mib(ctx)
        print(f"memory (PSS) {sum(memory.values()):.0f} MiB in {len(memory)} process groups")
        print(f"clouds.yaml: {ctx.clouds_yaml}" if ctx.clouds_yaml.exists() else "clouds.yaml: not written")
    return all_up


def up(ctx: Context) -> None:
    if status(ctx, quiet=True):
        ctx.progress("up", f"already running; clouds.yaml at {ctx.clouds_yaml}")
        status(ctx)
        return
    t0 = time.monotonic()
    machines = _optional("devcloud.machines")
    with _stage(ctx, "packages", "MariaDB and RabbitMQ from Debian"):
        packages.ensure(ctx)
    with _stage(ctx, "venv", f"OpenStack virtualenv at {ctx.venv}"):
        if venv.ensure(ctx):
            ctx.progress("venv", "installed from devcloud/requirements.txt")
        shim = _hook(machines, "install_shim")
        if shim is not None:
            shim(ctx.venv)
    prepare = _hook(machines, "prepare_host")
    if prepare is not None:
        with _stage(ctx, "host", "instance networking and base image (devcloud.machines)"):
            prepare(ctx.data_dir)
    with _stage(ctx, "mariadb", f"private MariaDB on 127.0.0.1:{ports.MARIADB}"):
        mariadb.start(ctx)
    with _stage(ctx, "rabbitmq", f"private RabbitMQ on 127.0.0.1:{ports.RABBITMQ}"):
        rabbitmq.start(ctx)
    with _stage(ctx, "keystone", f"identity on {ctx.admin.auth_url}"):
        keystone.start(ctx)
    with _stage(ctx, "catalog", "service users and endpoints"):
        for user, stype, sname, url in SERVICES:
            ctx.register_service(
                user=user,
                password=service_password(user),
                service_type=stype,
                service_name=sname,
                endpoints=[Endpoint(url)],
            )
    nova.prepare(ctx, compute_driver=nova.driver_name(shim is not None))
    _in_parallel(
        ctx,
        [
            # Nova first: its database syncs take longest.
            ("nova", nova.start),
            ("placement", placement.start),
            ("glance", glance.start),
            ("neutron", neutron.start),
            ("swift", swift.start),
            ("cinder", cinder.start),
        ],
    )
    base_image_tar = _hook(machines, "base_image_tar")
    with _stage(ctx, "resources", "sites, flavors, external network, subnet pool, base image"):
        resources.ensure(ctx, base_image_tar(ctx.data_dir) if base_image_tar else None)
    dns_up = _hook(_optional("devcloud.dns"), "up")
    if dns_up is not None:
        with _stage(ctx, "dns", "Designate and BIND (devcloud.dns)"):
            dns_up(ctx)
    clouds_yaml.write(ctx)
    ctx.progress(
        "up",
        f"cloud is up in {time.monotonic() - t0:.1f}s; clouds.yaml at {ctx.clouds_yaml}",
    )


def down(ctx: Context) -> None:
    t0 = time.monotonic()
    dns_down = _hook(_optional("devcloud.dns"), "down")
    if dns_down is not None:
        with _stage(ctx, "dns", "stopping (devcloud.dns)"):
            dns_down(ctx)
    shared = (mariadb.NAME, rabbitmq.NAME, rabbitmq.EPMD)
    # OpenStack first, all at once: once RabbitMQ is gone Nova and Cinder may ignore SIGTERM.
    openstack = [name for name, _url in CHECKS if name not in shared]
    running = [name for name in openstack if procs.read_pid(ctx, name) is not None]
    if running:
        ctx.progress("down", f"stopping {', '.join(running)}")
    procs.stop_many(ctx, openstack, timeout=10)
    teardown = _hook(_optional("devcloud.machines"), "teardown_host")
    if teardown is not None:
        with _stage(ctx, "host", "tearing down instance networking (devcloud.machines)"):
            teardown(ctx.data_dir)
    # Anything else a part started through ctx.start_process, before the shared services.
    others = [name for name in procs.names(ctx) if name not in shared]
    if others:
        ctx.progress("down", f"stopping {', '.join(others)}")
        procs.stop_many(ctx, others, timeout=10)
    ctx.progress("down", "stopping rabbitmq")
    rabbitmq.stop(ctx)
    ctx.progress("down", "stopping mariadb")
    mariadb.stop(ctx)
    ctx.progress("down", f"stopped in {time.monotonic() - t0:.1f}s")


__all__ = ["StageError", "down", "status", "up"]
