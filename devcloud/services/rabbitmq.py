"""The cloud's private RabbitMQ node, with its own epmd on a private port.

The Debian wrapper /usr/sbin/rabbitmq-server switches to the `rabbitmq` user and the system
node; /usr/lib/rabbitmq/bin/rabbitmq-server runs as us with everything taken from the
environment below. Our own epmd (ERL_EPMD_PORT) means `down` never stops a shared one.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from devcloud import ports, procs
from devcloud.services.common import StageError, port_open, wait_for_port

if TYPE_CHECKING:
    from devcloud.context import Context

NAME = "rabbitmq"
EPMD = "epmd"
EPMD_PORT = 14369
#: How `procs.kill_strays` recognises our epmd: by its command line, or, for one Erlang
#: started itself (`epmd -daemon`), by the environment it inherited.
EPMD_MARKERS = (f"epmd -port {EPMD_PORT}", f"ERL_EPMD_PORT={EPMD_PORT}")
RABBIT_BIN = "/usr/lib/rabbitmq/bin"


def _env(ctx: Context) -> dict[str, str]:
    base = ctx.state_dir / "rabbitmq"
    etc = ctx.etc_dir / "rabbitmq"
    return {
        "HOME": str(base),  # the Erlang cookie lives in $HOME
        "ERL_EPMD_PORT": str(EPMD_PORT),
        "RABBITMQ_NODENAME": "devcloud@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(ports.RABBITMQ),
        "RABBITMQ_DIST_PORT": str(ports.RABBITMQ_DIST),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(ctx.logs_dir),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_CONFIG_FILE": str(etc / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(etc / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(etc / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(etc / "rabbitmq-env.conf"),
        "RABBITMQ_PID_FILE": str(base / "beam.pid"),  # not in run/, which holds only ours
        # Two schedulers, no busy-waiting: this shares 2 cores with the whole cloud.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none",
    }


def start(ctx: Context) -> None:
    env = _env(ctx)
    etc = ctx.etc_dir / "rabbitmq"
    etc.mkdir(parents=True, exist_ok=True)
    (ctx.state_dir / "rabbitmq").mkdir(parents=True, exist_ok=True)
    (etc / "rabbitmq.conf").write_text(
        f"listeners.tcp.1 = 127.0.0.1:{ports.RABBITMQ}\n"
        "loopback_users = none\n"
        f"default_user = {ctx.rabbit_user}\n"
        f"default_pass = {ctx.rabbit_password}\n"
        "vm_memory_high_watermark.absolute = 512MiB\n"
        "disk_free_limit.absolute = 50MB\n"
    )
    (etc / "advanced.config").write_text("[].\n")
    (etc / "enabled_plugins").write_text("[].\n")
    (etc / "rabbitmq-env.conf").write_text("")
    if port_open(EPMD_PORT) and not ctx.process_alive(EPMD):
        # Erlang starts `epmd -daemon` on ERL_EPMD_PORT by itself when ours is gone; any epmd
        # there serves our node, and `down` finds it by that variable.
        ctx.progress("rabbitmq", f"reusing the epmd already on port {EPMD_PORT}")
    else:
        ctx.start_process(EPMD, ["epmd", "-port", str(EPMD_PORT), "-address", "127.0.0.1"], env=env)
        wait_for_port(ctx, EPMD, EPMD_PORT, timeout=15)
    ctx.start_process(NAME, [f"{RABBIT_BIN}/rabbitmq-server"], env=env)
    wait_for_port(ctx, NAME, ports.RABBITMQ, timeout=90)
    # default_user only applies to a fresh node; make sure ours exists on an old one too.
    ctl = [f"{RABBIT_BIN}/rabbitmqctl", "--node", "devcloud@localhost"]
    users = subprocess.run(
        [*ctl, "list_users", "-q"],
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if users.returncode != 0:
        raise StageError(f"rabbitmqctl list_users failed: {users.stderr.strip()}")
    if ctx.rabbit_user not in users.stdout.split():
        for args in (
            ["add_user", ctx.rabbit_user, ctx.rabbit_password],
            ["set_permissions", ctx.rabbit_user, ".*", ".*", ".*"],
        ):
            subprocess.run(
                [*ctl, *args],
                env={**os.environ, **env},
                check=True,
                capture_output=True,
            )


def stop(ctx: Context) -> None:
    procs.stop(ctx, NAME, timeout=30)
    procs.stop(ctx, EPMD, timeout=5)
