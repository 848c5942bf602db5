"""The order in which the cloud comes up and goes down, and what "up" means for status."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

from devcloud import clouds_yaml, health, parts, ports, procs
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
from devcloud.services.common import service_password

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


def up(ctx: Context) -> None:
    if health.status(ctx, quiet=True):
        ctx.progress("up", f"already running; clouds.yaml at {ctx.clouds_yaml}")
        # A newer checkout may listen on more addresses: named takes that without a restart.
        dns_refresh = parts.hook(parts.optional("devcloud.dns"), "refresh")
        if dns_refresh is not None:
            dns_refresh(ctx)
        # A cloud started before devcloud.dcim existed (or whose Nautobot was stopped) gets it now.
        dcim_start = parts.hook(parts.optional("devcloud.dcim"), "start_background")
        if dcim_start is not None:
            dcim_start(ctx)
        if not venv.is_current(ctx):
            ctx.progress(
                "up", "devcloud/requirements.txt changed since the venv was installed: `down` then `up` to apply"
            )
        health.status(ctx)
        return
    health.check_ports_free(ctx)
    t0 = time.monotonic()
    health.claim_ports(ctx)
    # Nautobot needs nothing of the cloud, and its first migration on a fresh machine takes ~4
    # minutes of one core: it starts first, in a process of its own, so that it runs beside the
    # cloud's start instead of after it; `up` does not wait for it (`status` shows when it answers).
    dcim_start = parts.hook(parts.optional("devcloud.dcim"), "start_background")
    if dcim_start is not None:
        dcim_start(ctx)
    machines = parts.optional("devcloud.machines")
    shim = parts.hook(machines, "install_shim")
    prepare = parts.hook(machines, "prepare_host")
    base_image_tar = parts.hook(machines, "base_image_tar")
    dns_up = parts.hook(parts.optional("devcloud.dns"), "up")

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

    # The host preparation (the base image the first time) is needed only by nova-compute: it
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
    dcim_down = parts.hook(parts.optional("devcloud.dcim"), "down")
    if dcim_down is not None:
        with _stage(ctx, "dcim", "stopping (devcloud.dcim)"):
            dcim_down(ctx)
    dns_down = parts.hook(parts.optional("devcloud.dns"), "down")
    if dns_down is not None:
        with _stage(ctx, "dns", "stopping (devcloud.dns)"):
            dns_down(ctx)
    shared = (mariadb.NAME, rabbitmq.NAME, rabbitmq.EPMD)
    # OpenStack first, all at once: once RabbitMQ is gone Nova and Cinder may ignore SIGTERM.
    openstack = [name for name, _url in health.CHECKS if name not in shared]
    running = [name for name in openstack if procs.read_pid(ctx, name) is not None]
    if running:
        ctx.progress("down", f"stopping {', '.join(running)}")
    procs.stop_many(ctx, openstack, timeout=10)
    teardown = parts.hook(parts.optional("devcloud.machines"), "teardown_host")
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
    # `down`.
    # Our epmd has no data directory in its command line: it is ours only if this data
    # directory's cloud is the one holding the ports.
    epmd = rabbitmq.EPMD_MARKERS if health.owns_ports(ctx) else ()
    for stray in procs.kill_strays(ctx, markers=epmd):
        ctx.progress("down", f"killed stray process {stray}")
    health.release_ports(ctx)
    ctx.progress("down", f"stopped in {time.monotonic() - t0:.1f}s")
