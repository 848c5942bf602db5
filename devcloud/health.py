"""What "up" means: every process alive and every API answering; and the ports it needs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from devcloud import parts, ports, procs
from devcloud.context import Context
from devcloud.services import (
    cinder,
    glance,
    keystone,
    mariadb,
    neutron,
    nova,
    placement,
    rabbitmq,
    s3_gateway,
    swift,
)
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
    (s3_gateway.PROCESS, None),
    (nova.API, f"http://127.0.0.1:{ports.NOVA}/"),
    *((name, None) for name in nova.DAEMONS),
    *((name, None) for name in nova.compute_names()),
    (cinder.API, f"http://127.0.0.1:{ports.CINDER}/"),
    *((name, None) for name in cinder.DAEMONS),
]


#: Ports each of our processes binds, to find a clash before starting anything.
PORTS: dict[str, tuple[int, ...]] = {
    mariadb.NAME: (ports.MARIADB,),
    rabbitmq.NAME: (ports.RABBITMQ, ports.RABBITMQ_DIST),
    keystone.NAME: (ports.KEYSTONE,),
    placement.NAME: (ports.PLACEMENT,),
    glance.NAME: (ports.GLANCE,),
    neutron.NAME: (ports.NEUTRON,),
    nova.API: (ports.NOVA,),
    cinder.API: (ports.CINDER,),
    swift.PROXY: (ports.SWIFT_PROXY,),
    s3_gateway.PROCESS: (ports.S3_GATEWAY,),
    **{f"swift-{ring}": (port,) for ring, port in swift.SERVERS},
}


#: Which data directory's cloud holds the (fixed) ports right now; machine-wide on purpose.
OWNER_FILE = Path("/run/tonle-devcloud.owner")


def _clashes(ctx: Context) -> list[str]:
    return [
        f"{port} (for {name})"
        for name, wanted in PORTS.items()
        if procs.read_pid(ctx, name) is None
        for port in wanted
        if port_open(port)
    ]


def _owner() -> str | None:
    try:
        return OWNER_FILE.read_text().strip() or None
    except OSError:
        return None


def _take_over(ctx: Context, owner: str) -> None:
    """Stop the devcloud of data directory `owner` (`down` with our code on its files)."""
    ctx.progress("up", f"stopping the devcloud of {owner}, which holds our ports")
    env = {**os.environ, "TONLE_DATA_DIR": owner}
    subprocess.run([sys.executable, "-m", "devcloud", "down"], cwd=ctx.repo_root, env=env, check=False, timeout=300)
    # Its directory may be gone (a deleted CI clone): its processes still name it.
    other = Context(data_dir=Path(owner) / "devcloud", progress=ctx.progress)
    for stray in procs.kill_strays(other, markers=rabbitmq.EPMD_MARKERS):
        ctx.progress("up", f"killed {stray}")
    deadline = time.monotonic() + 20
    while _clashes(ctx) and time.monotonic() < deadline:
        time.sleep(0.5)


def check_ports_free(ctx: Context) -> None:
    """Fail early, and say why, when another program (often a devcloud of another data
    directory, e.g. a CI clone's) holds a port one of our stopped processes needs.

    With CI=true or TONLE_DEVCLOUD_TAKEOVER=1, a devcloud of another data directory is
    stopped instead: a fresh CI clone must not fail on a cloud a developer left running.
    """
    owner = _owner()
    takeover = os.environ.get("CI") == "true" or os.environ.get("TONLE_DEVCLOUD_TAKEOVER") == "1"
    if _clashes(ctx) and owner and owner != str(ctx.data_dir.parent) and takeover:
        _take_over(ctx, owner)
    clashes = _clashes(ctx)
    if clashes:
        raise StageError(
            f"ports already in use on 127.0.0.1: {', '.join(clashes)}. Another devcloud may be "
            f"running from another data directory: stop it with `TONLE_DATA_DIR={owner or '<its data dir>'} "
            f"python -m devcloud down`, or set TONLE_DEVCLOUD_TAKEOVER=1 to have `up` do it "
            f"(`ss -ltnp` shows who listens)."
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
    # The DCIM is reported, not counted: it comes up in the background after the cloud, and
    # `up` must not start the cloud again while Nautobot is still migrating.
    dcim_status = parts.hook(parts.optional("devcloud.dcim"), "status")
    if dcim_status is not None and not quiet:
        states = dcim_status(ctx)
        for name, ok in states.items():
            print(f"{name:24} {'up' if ok else 'down'}")
        if not all(states.values()):
            print(f"{'':24} (the DCIM starts in the background after `up`: logs/dcim-bootstrap.log)")
    if not quiet:
        memory = procs.memory_mib(ctx)
        print(f"memory (PSS) {sum(memory.values()):.0f} MiB in {len(memory)} process groups")
        print(f"clouds.yaml: {ctx.clouds_yaml}" if ctx.clouds_yaml.exists() else "clouds.yaml: not written")
    return all_up


def claim_ports(ctx: Context) -> None:
    """Record that this data directory's cloud holds the ports (for check_ports_free's message)."""
    with suppress(OSError):
        OWNER_FILE.write_text(f"{ctx.data_dir.parent}\n")


def owns_ports(ctx: Context) -> bool:
    """True if this data directory's cloud holds the ports (or nobody recorded holding them)."""
    owner = _owner()
    return owner is None or owner == str(ctx.data_dir.parent)


def release_ports(ctx: Context) -> None:
    if OWNER_FILE.exists() and OWNER_FILE.read_text().strip() == str(ctx.data_dir.parent):
        OWNER_FILE.unlink(missing_ok=True)
