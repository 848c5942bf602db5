"""What "up" means: every process alive and every API answering; and the ports it needs."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

from devcloud import parts, ports, procs
from devcloud.context import Context
from devcloud.services import cinder, glance, keystone, mariadb, neutron, nova, placement, rabbitmq, swift
from devcloud.services.common import StageError, http_ok, port_open

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


def check_ports_free(ctx: Context) -> None:
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
    dns_status = parts.hook(parts.optional("devcloud.dns"), "status")
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


def claim_ports(ctx: Context) -> None:
    """Record that this data directory's cloud holds the ports (for check_ports_free's message)."""
    with suppress(OSError):
        OWNER_FILE.write_text(f"{ctx.data_dir.parent}\n")


def release_ports(ctx: Context) -> None:
    if OWNER_FILE.exists() and OWNER_FILE.read_text().strip() == str(ctx.data_dir.parent):
        OWNER_FILE.unlink(missing_ok=True)
