"""The order in which the cloud comes up and goes down, and what "up" means for status."""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
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
from devcloud.services.common import StageError, http_ok, port_open, service_password

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


#: Seconds per stage of the current `up`, written to `<data>/devcloud/up-timings.json` for
#: bench/devcloud.py.
_TIMINGS: dict[str, float] = {}


@contextmanager
def _stage(ctx: Context, stage: str, what: str) -> Iterator[None]:
    t0 = time.monotonic()
    ctx.progress(stage, f"{what} ...")
    yield
    _TIMINGS[stage] = round(time.monotonic() - t0, 1)
    ctx.progress(stage, f"done in {_TIMINGS[stage]:.1f}s")


Stage = tuple[str, str, Callable[[], None]]  # (stage, what, work)


def _in_parallel(ctx: Context, stages: list[Stage], workers: int = 3) -> None:
    """Run independent stages on threads (they mostly wait: on pip, apt, MariaDB, imports);
    re-raise the first failure once all have finished, so no stage is left half-done."""

    def run(stage: str, what: str, work: Callable[[], None]) -> None:
        with _stage(ctx, stage, what):
            work()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run, *stage) for stage in stages]
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


#: Ports each of our processes binds, to find a clash before starting anything.
PORTS: dict[str, tuple[int, ...]] = {
    mariadb.NAME: (ports.MARIADB,),
    rabbitmq.EPMD: (rabbitmq.EPMD_PORT,),
    rabbitmq.NAME: (ports.RABBITMQ, ports.RABBITMQ_DIST),
    keystone.NAME: (ports.KEYSTONE,),
    placement.NAME: (ports.PLACEMENT,),
    glance.NAME: (ports.GLANCE,),
    neutron.NAME: (ports.NEUTRON,),
    nova.API: (ports.NOVA,),
    cinder.API: (ports.CINDER,),
    swift.PROXY: (ports.SWIFT_PROXY,),
    **{f"swift-{ring}": (port,) for ring, port in swift.SERVERS},
}


#: Which data directory's cloud holds the (fixed) ports right now; machine-wide on purpose.
OWNER_FILE = Path("/run/tonle-devcloud.owner")


def _check_ports_free(ctx: Context) -> None:
    """Fail early, and say why, when another program (often a devcloud of another data
    directory, e.g. a CI clone's) holds a port one of our stopped processes needs."""
    clashes = [
        f"{port} (for {name})"
        for name, wanted in PORTS.items()
        if procs.read_pid(ctx, name) is None
        for port in wanted
        if port_open(port)
    ]
    if clashes:
        try:
            owner = OWNER_FILE.read_text().strip()
        except OSError:
            owner = "<its data dir>"
        raise StageError(
            f"ports already in use on 127.0.0.1: {', '.join(clashes)}. Another devcloud may be "
            f"running from another data directory: stop it with `TONLE_DATA_DIR={owner} "
            f"python -m devcloud down` (`ss -ltnp` shows who listens)."
        )


def up(ctx: Context) -> None:
    if status(ctx, quiet=True):
        ctx.progress("up", f"already running; clouds.yaml at {ctx.clouds_yaml}")
        status(ctx)
        return
    _check_ports_free(ctx)
    t0 = time.monotonic()
    with suppress(OSError):  # only used to improve an error message
        OWNER_FILE.write_text(f"{ctx.data_dir.parent}\n")
    machines = _optional("devcloud.machines")
    shim = _hook(machines, "install_shim")
    prepare = _hook(machines, "prepare_host")
    base_image_tar = _hook(machines, "base_image_tar")
    dns_up = _hook(_optional("devcloud.dns"), "up")

    def cloud_venv() -> None:
        if venv.ensure(ctx):
            ctx.progress("venv", "installed from devcloud/requirements.txt")
        if shim is not None:
            shim(ctx.venv)

    def shared_services() -> None:
        packages.ensure(ctx)
        mariadb.start(ctx)
        ctx.progress("mariadb", f"private MariaDB up on 127.0.0.1:{ports.MARIADB}")
        rabbitmq.start(ctx)
        ctx.progress("rabbitmq", f"private RabbitMQ up on 127.0.0.1:{ports.RABBITMQ}")

    def identity() -> None:
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

    def host() -> None:
        if prepare is not None:
            with _stage(ctx, "host", "instance networking and base image (devcloud.machines)"):
                prepare(ctx.data_dir)

    # The host preparation (debootstrap the first time) is needed only by nova-compute: it
    # runs beside everything else. pip and apt are the other slow starts of a fresh machine.
    with ThreadPoolExecutor(max_workers=1) as host_pool:
        host_done = host_pool.submit(host)
        _in_parallel(
            ctx,
            [
                ("venv", f"OpenStack virtualenv at {ctx.venv}", cloud_venv),
                ("shared", "MariaDB and RabbitMQ (Debian packages, private instances)", shared_services),
            ],
        )
        identity()
        nova.prepare(ctx, compute_driver=nova.driver_name(shim is not None))
        openstack_stages: list[Stage] = [
            # Nova first: its database syncs take longest.
            (name, "database, config, processes", partial(module.start, ctx))
            for name, module in (
                ("nova", nova),
                ("placement", placement),
                ("glance", glance),
                ("neutron", neutron),
                ("swift", swift),
                ("cinder", cinder),
            )
        ]

        def openstack_services() -> None:
            _in_parallel(ctx, openstack_stages)
            host_done.result()
            with _stage(ctx, "computes", "nova-compute for each site"):
                nova.start_computes(ctx)
            with _stage(ctx, "resources", "sites, flavors, external network, subnet pool, base image"):
                resources.ensure(ctx, base_image_tar(ctx.data_dir) if base_image_tar else None)

        # DNS needs only Keystone, MariaDB and RabbitMQ: it comes up beside the other services.
        services: list[Stage] = [("openstack", "Nova, Placement, Glance, Neutron, Swift, Cinder", openstack_services)]
        if dns_up is not None:
            services.append(("dns", "Designate and BIND (devcloud.dns)", partial(dns_up, ctx)))
        _in_parallel(ctx, services, workers=2)
    clouds_yaml.write(ctx)
    _TIMINGS["total"] = round(time.monotonic() - t0, 1)
    (ctx.data_dir / "up-timings.json").write_text(json.dumps(_TIMINGS, indent=1) + "\n")
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
    # Whatever no pid file accounted for (a deleted run/, orphaned workers): none may outlive
    # `down`. Our epmd is matched by its private port.
    for stray in procs.kill_strays(ctx, markers=(f"epmd -port {rabbitmq.EPMD_PORT}",)):
        ctx.progress("down", f"killed stray process {stray}")
    if OWNER_FILE.exists() and OWNER_FILE.read_text().strip() == str(ctx.data_dir.parent):
        OWNER_FILE.unlink(missing_ok=True)
    ctx.progress("down", f"stopped in {time.monotonic() - t0:.1f}s")


__all__ = ["StageError", "down", "status", "up"]
