"""Admin resources: site zones, flavors, the external network, the tenant subnet pool, and
the `tonle` project and user the site entries of clouds.yaml log in as."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from devcloud import procs
from devcloud.keystone_admin import session
from devcloud.services import nova
from devcloud.services.common import StageError, run_logged

if TYPE_CHECKING:
    from pathlib import Path

    from devcloud.context import Context

SITE_PROJECT = "tonle"
SITE_USER = "tonle"
SITE_PASSWORD = "devcloud-tonle"


def ensure(ctx: Context, base_image: Path | None = None) -> None:
    """`base_image`: a tar of a root filesystem to upload as `debian-12` if none exists."""
    ks = session(ctx)
    project = ks.ensure_project(SITE_PROJECT, description="devcloud: the default project of the site entries")
    user = ks.ensure_user(SITE_USER, SITE_PASSWORD)
    ks.grant(project, user, "member")
    ks.ensure_role("ResellerAdmin")
    env = {
        "OS_AUTH_URL": ctx.admin.auth_url,
        "OS_USERNAME": ctx.admin.username,
        "OS_PASSWORD": ctx.admin.password,
        "OS_PROJECT_NAME": ctx.admin.project_name,
        "OS_USER_DOMAIN_NAME": ctx.admin.user_domain_name,
        "OS_PROJECT_DOMAIN_NAME": ctx.admin.project_domain_name,
        "OS_REGION_NAME": ctx.admin.region_name,
        "OS_IDENTITY_API_VERSION": "3",
        "DEVCLOUD_NOVA_CONF": str(ctx.etc_dir / "nova" / "nova.conf"),
    }
    if base_image is not None:
        env["DEVCLOUD_BASE_IMAGE"] = str(base_image)
    bootstrap = [str(ctx.venv_bin("python")), "-m", "devcloud.services.bootstrap_cloud"]
    env = {**os.environ, **env}
    _wait_for_computes(ctx, [*bootstrap, "--wait-for-computes"], env=env)
    run_logged(ctx, "bootstrap", bootstrap, env=env)


def _wait_for_computes(ctx: Context, argv: list[str], env: dict[str, str]) -> None:
    """Both compute hosts reporting up, with one restart of them if they do not.

    On a loaded 2-core machine a nova-compute has once started and never reported up (CI,
    with Designate installing beside it). A restart is cheap and nothing runs on the hosts yet;
    if it does not help, the error carries each compute's log tail, not just ours.
    """
    try:
        run_logged(ctx, "bootstrap", argv, env=env)
        return
    except StageError:
        pass
    dead = [name for name in nova.compute_names() if not ctx.process_alive(name)]
    exited = f" ({', '.join(dead)} had exited)" if dead else ""
    ctx.progress("resources", f"compute hosts not up in time; restarting them{exited}")
    for name in nova.compute_names():
        ctx.stop_process(name)
    nova.start_computes(ctx)
    try:
        run_logged(ctx, "bootstrap", argv, env=env)
    except StageError as exc:
        logs = [ctx.log_path(name) for name in nova.compute_names()]
        tails = [f"---- last lines of {log} ----\n{procs.tail(log)}" for log in logs]
        raise StageError("\n".join([str(exc), *tails])) from None
