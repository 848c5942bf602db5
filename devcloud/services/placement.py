"""Placement: resource inventories for Nova's scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.services.common import authtoken_section, run_logged, wait_for_http
from devcloud.services.wsgi import start_api

if TYPE_CHECKING:
    from devcloud.context import Context

NAME = "placement-api"


def start(ctx: Context) -> None:
    etc = ctx.etc_dir / "placement"
    etc.mkdir(parents=True, exist_ok=True)
    conf = etc / "placement.conf"
    conf.write_text(
        "# Rendered by devcloud/services/placement.py\n"
        "[api]\nauth_strategy = keystone\n"
        f"[placement_database]\nconnection = {ctx.create_database('placement')}\nmax_pool_size = 5\n"
        + authtoken_section(ctx, "placement")
    )
    run_logged(
        ctx,
        "placement-manage",
        [
            str(ctx.venv_bin("placement-manage")),
            "--config-file",
            str(conf),
            "db",
            "sync",
        ],
    )
    start_api(
        ctx,
        NAME,
        module="placement.wsgi.api",
        port=ports.PLACEMENT,
        env={"OS_PLACEMENT_CONFIG_DIR": str(etc)},
    )
    wait_for_http(ctx, NAME, f"http://127.0.0.1:{ports.PLACEMENT}/")
