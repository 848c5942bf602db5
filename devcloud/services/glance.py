"""Glance with the file store."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.services.common import authtoken_section, run_logged, wait_for_http
from devcloud.services.wsgi import start_api

if TYPE_CHECKING:
    from devcloud.context import Context

NAME = "glance-api"


def start(ctx: Context) -> None:
    etc = ctx.etc_dir / "glance"
    etc.mkdir(parents=True, exist_ok=True)
    state = ctx.state_dir / "glance"
    for sub in ("images", "staging", "tasks", "locks"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    # Glance's WSGI app reads glance-api.conf and glance-api-paste.ini from OS_GLANCE_CONFIG_DIR.
    shutil.copy(
        ctx.venv / "etc" / "glance" / "glance-api-paste.ini",
        etc / "glance-api-paste.ini",
    )
    conf = etc / "glance-api.conf"
    conf.write_text(
        f"""# Rendered by devcloud/services/glance.py
[DEFAULT]
enabled_backends = file:file
show_image_direct_url = false
image_size_cap = 10737418240
[database]
connection = {ctx.create_database("glance")}
max_pool_size = 5
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = {state / "images"}
[os_glance_staging_store]
filesystem_store_datadir = {state / "staging"}
[os_glance_tasks_store]
filesystem_store_datadir = {state / "tasks"}
[oslo_concurrency]
lock_path = {state / "locks"}
[paste_deploy]
flavor = keystone
config_file = {etc / "glance-api-paste.ini"}
[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
"""
        + authtoken_section(ctx, "glance")
    )
    run_logged(
        ctx,
        "glance-manage",
        [str(ctx.venv_bin("glance-manage")), "--config-file", str(conf), "db_sync"],
    )
    start_api(
        ctx,
        NAME,
        module="glance.wsgi.api",
        port=ports.GLANCE,
        env={"OS_GLANCE_CONFIG_DIR": str(etc)},
    )
    wait_for_http(ctx, NAME, f"http://127.0.0.1:{ports.GLANCE}/")
