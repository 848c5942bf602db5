"""`up`, `down` and `status` of the DNS part; called by `python -m devcloud`."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from devcloud.dns import bind, config, daemons, database, keystone, venv
from devcloud.dns import layout as L
from devcloud.dns.layout import Layout
from devcloud.dns.waiting import DnsError

if TYPE_CHECKING:
    from devcloud.context import Context

_PREPARE_LOCK = threading.Lock()

#: Ports each of our processes binds; checked before starting it.
PORTS: dict[str, tuple[int, ...]] = {
    L.NAMED: (L.BIND_PORT, L.RNDC_PORT),
    L.MDNS: (L.MDNS_PORT,),
    L.API: (L.API_PORT,),
}


def _check_ports_free(ctx: Context) -> None:
    """Fail clearly when another process holds our ports (often: a devcloud of another
    TONLE_DATA_DIR still running), instead of a daemon failing to bind later."""
    if not ctx.process_alive(L.NAMED) and (holders := bind.instance_port_holders()):
        raise DnsError(
            f"port {L.INSTANCE_PORT} is held where named must answer the instances "
            f"({L.INSTANCE_ADDRESS}); stop that DNS server or make it listen on loopback only:\n" + "\n".join(holders)
        )
    for name, ports in PORTS.items():
        if ctx.process_alive(name):
            continue
        for port in ports:
            if daemons.port_open(port):
                raise DnsError(
                    f"{L.HOST}:{port} (for {name}) is already in use by a process devcloud did not "
                    f"start from {ctx.data_dir}: another devcloud running? See `ss -ltnp 'sport = :{port}'`"
                )


def _running(ctx: Context, lay: Layout) -> bool:
    return all(ctx.process_alive(name) for name in L.PROCESSES) and bind.responding(lay) and daemons.api_answers()


def prepare(ctx: Context) -> None:
    """The slow, cloud-independent part of `up`: BIND's packages and Designate's venv.

    Needs nothing of the cloud, so `python -m devcloud up` may run it in a thread while the
    OpenStack services start (pip is most of a first `up`). Idempotent; `up` calls it too.
    """
    lay = Layout.of(ctx)
    with _PREPARE_LOCK:  # `up` may call this while a thread still runs it
        bind.ensure_installed(ctx)
        if venv.ensure(ctx, lay):
            # New code in the venv: restart what runs the old one (named is not in the venv).
            for name in reversed(L.PROCESSES[1:]):
                ctx.stop_process(name)


def up(ctx: Context, *, register: bool = True, auth_strategy: str = "keystone") -> None:
    """Bring DNS up; does nothing when it all runs already.

    Needs the cloud's MariaDB, RabbitMQ and Keystone. `register=False, auth_strategy="noauth"`
    runs Designate without Keystone (for working on this part alone; never in `up`).
    """
    lay = Layout.of(ctx)
    if venv.current(lay) and _running(ctx, lay):
        refresh(ctx)
        ctx.progress(
            "dns",
            f"already running (API {daemons.API_URL}, BIND {L.HOST}:{L.BIND_PORT})",
        )
        return
    started = time.monotonic()

    _check_ports_free(ctx)
    prepare(ctx)

    ctx.progress("dns", "database and configuration")
    settings = config.Settings(
        database_url=database.ensure(ctx, lay),
        transport_url=ctx.transport_url,
        auth_url=ctx.admin.auth_url,
        region=ctx.admin.region_name,
        rndc=bind.tool("rndc"),
        auth_strategy=auth_strategy,
    )
    config.write(lay, settings)
    bind.write_config(lay)
    database.sync(lay)

    ctx.progress("dns", f"BIND9 on {L.HOST}:{L.BIND_PORT} (rndc {L.RNDC_PORT})")
    bind.start(ctx, lay)

    # Central needs no Keystone: let it import and connect while Keystone registers us.
    ctx.progress("dns", "designate-central, then the default pool")
    daemons.launch(ctx, lay, L.CENTRAL)
    if register:
        ctx.progress("dns", "Keystone: service user and dns endpoint")
        keystone.register(ctx)
    daemons.wait_ready(ctx, lay, L.CENTRAL, timeout=90)
    daemons.pool_update(ctx, lay)
    ctx.progress("dns", "designate-worker and designate-mdns")
    daemons.start(ctx, lay, L.WORKER, L.MDNS)
    ctx.progress("dns", "designate-producer and designate-api")
    # Both only call central and the worker, whose queues exist by now.
    daemons.start(ctx, lay, L.PRODUCER, L.API)
    ctx.progress("dns", f"ready in {time.monotonic() - started:.1f} s: API {daemons.API_URL}")


def refresh(ctx: Context) -> None:
    """Bring a running named's configuration up to date (`rndc reconfig`, no restart); nothing
    when named is not running or its configuration is current. `python -m devcloud up` calls it
    on a cloud that is already up."""
    lay = Layout.of(ctx)
    if not (ctx.process_alive(L.NAMED) and bind.responding(lay)):
        return
    if bind.write_config(lay):
        ctx.progress("dns", f"named.conf changed: rndc reconfig (BIND for instances on {L.INSTANCE_ADDRESS})")
        bind.reconfigure(lay)


def down(ctx: Context) -> None:
    """Stop what `up` started, API first, named last (SIGKILL after the timeout)."""
    for name in reversed(L.PROCESSES):
        if ctx.process_alive(name):
            ctx.progress("dns", f"stopping {name}")
        ctx.stop_process(name, timeout=10)


def status(ctx: Context) -> dict[str, bool]:
    """Process name -> running; plus whether BIND and the API actually answer."""
    lay = Layout.of(ctx)
    result = {name: ctx.process_alive(name) for name in L.PROCESSES}
    result["dns-bind-answers"] = result[L.NAMED] and bind.responding(lay)
    result["dns-api-answers"] = result[L.API] and daemons.api_answers()
    return result
