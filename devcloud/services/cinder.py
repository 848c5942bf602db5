"""Cinder with one fake backend per site (`FakeLoggingVolumeDriver`, shipped in the wheel).

The fake driver keeps no data: a volume is a database row whose attach/detach Nova and the
virt driver go through; enough for the orchestrator's workflows, not for storing bytes.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.context import SITES
from devcloud.services.common import (
    authtoken_section,
    keystone_auth_options,
    run_logged,
    service_user_section,
    wait_for_http,
)
from devcloud.services.wsgi import start_api

if TYPE_CHECKING:
    from devcloud.context import Context

API = "cinder-api"
DAEMONS = ("cinder-scheduler", "cinder-volume")
DRIVER = "cinder.tests.fake_driver.FakeLoggingVolumeDriver"


def _backends() -> str:
    return "".join(
        f"[fake-{site}]\nvolume_driver = {DRIVER}\nvolume_backend_name = fake-{site}\n"
        f"backend_availability_zone = {site}\n"
        for site in SITES
    )


def start(ctx: Context) -> None:
    etc = ctx.etc_dir / "cinder"
    etc.mkdir(parents=True, exist_ok=True)
    state = ctx.state_dir / "cinder"
    (state / "locks").mkdir(parents=True, exist_ok=True)
    for shipped in ("api-paste.ini", "resource_filters.json"):
        shutil.copy(ctx.venv / "etc" / "cinder" / shipped, etc / shipped)
    conf = etc / "cinder.conf"
    conf.write_text(
        f"""# Rendered by devcloud/services/cinder.py
[DEFAULT]
transport_url = {ctx.transport_url}
auth_strategy = keystone
my_ip = 127.0.0.1
host = devcloud
state_path = {state}
api_paste_config = {etc / "api-paste.ini"}
# Without it the API refuses every filter, even `name`.
resource_query_filters_file = {etc / "resource_filters.json"}
enabled_backends = {",".join(f"fake-{s}" for s in SITES)}
default_availability_zone = primary
storage_availability_zone = primary
# A volume may be created in a zone whose backend is down: the fake backends share a process.
allow_availability_zone_fallback = true
debug = false
[database]
connection = {ctx.create_database("cinder")}
max_pool_size = 5
[oslo_concurrency]
lock_path = {state / "locks"}
[oslo_messaging_notifications]
driver = noop
[nova]
{keystone_auth_options(ctx, "cinder")}
[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
{_backends()}
{authtoken_section(ctx, "cinder")}
{service_user_section(ctx, "cinder")}
"""
    )
    argv = ["--config-file", str(conf)]
    run_logged(ctx, "cinder-manage", [str(ctx.venv_bin("cinder-manage")), *argv, "db", "sync"])
    for daemon in DAEMONS:
        ctx.start_process(daemon, [str(ctx.venv_bin(daemon)), *argv])
    start_api(ctx, API, module="cinder.wsgi.api", port=ports.CINDER, pyargv=argv)
    wait_for_http(ctx, API, f"http://127.0.0.1:{ports.CINDER}/", timeout=120)
