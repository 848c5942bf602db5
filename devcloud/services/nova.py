"""Nova: API (uWSGI), conductor, scheduler, and one nova-compute per site.

Each site (`primary`, `dr`) is an availability zone with its own compute host
`<site>-compute1` (own `state_path`, so its own node uuid, and own `instances_path`);
devcloud/services/resources.py puts each host into its zone's aggregate.
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
    from pathlib import Path

    from devcloud.context import Context

API = "nova-api"
DAEMONS = ("nova-conductor", "nova-scheduler")
FAKE_DRIVER = "fake.FakeDriverWithoutFakeNodes"
#: nova 34 imports only `nova.virt.<compute_driver>`; devcloud.machines.install_shim puts
#: `nova/virt/tonle_nspawn.py` into the cloud venv.
NSPAWN_DRIVER = "tonle_nspawn.NspawnDriver"


def compute_host(site: str) -> str:
    return f"{site}-compute1"


def compute_names() -> list[str]:
    return [f"nova-compute-{site}" for site in SITES]


def driver_name(have_shim: bool) -> str:
    return NSPAWN_DRIVER if have_shim else FAKE_DRIVER


#: Seconds nova waits for one call to Placement, Neutron or Cinder (each retried by nova).
SERVICE_CALL_TIMEOUT = 60


def _etc(ctx: Context) -> Path:
    return ctx.etc_dir / "nova"


def _conf(ctx: Context, compute_driver: str) -> str:
    state = ctx.state_dir / "nova"
    section = keystone_auth_options
    return f"""# Rendered by devcloud/services/nova.py
[DEFAULT]
transport_url = {ctx.transport_url}
my_ip = 127.0.0.1
state_path = {state}
compute_driver = {compute_driver}
# No agent reports a port as plugged; do not wait for network-vif-plugged events.
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
# Servers created without a zone go to the primary site.
default_schedule_zone = primary
allow_resize_to_same_host = true
# After `down`/`up`, boot again the instances that were running (devcloud/machines).
resume_guests_state_on_host_boot = true
shutdown_timeout = 30
instance_name_template = instance-%(uuid)s
debug = false
[api]
auth_strategy = keystone
dhcp_domain =
[api_database]
connection = {ctx.mariadb.url("nova_api")}
max_pool_size = 5
[database]
connection = {ctx.mariadb.url("nova")}
max_pool_size = 5
[conductor]
workers = 1
[scheduler]
workers = 1
# New compute hosts are mapped into the cell without a manual discover_hosts.
discover_hosts_in_cells_interval = 10
[filter_scheduler]
track_instance_changes = false
[oslo_concurrency]
lock_path = {state / "locks"}
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
# Calls to the other services time out (keystoneauth's default is never): a call stalled on a
# busy 2-core machine would otherwise hold, say, a server's delete on its compute host for good.
[placement]
{section(ctx, "nova")}
timeout = {SERVICE_CALL_TIMEOUT}
[neutron]
{section(ctx, "nova")}
timeout = {SERVICE_CALL_TIMEOUT}
service_metadata_proxy = false
[cinder]
{section(ctx, "nova")}
timeout = {SERVICE_CALL_TIMEOUT}
os_region_name = {ctx.admin.region_name}
[glance]
region_name = {ctx.admin.region_name}
[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
[tonle_nspawn]
# Read by devcloud/machines/nova_driver.py; both compute hosts share images, bridges and NAT.
data_dir = {ctx.data_dir}
floating_ip_sync_interval = 2
{authtoken_section(ctx, "nova")}
{service_user_section(ctx, "nova")}
"""


def prepare(ctx: Context, compute_driver: str) -> None:
    """Write the config; done before the other services start so its errors show early."""
    etc = _etc(ctx)
    etc.mkdir(parents=True, exist_ok=True)
    (ctx.state_dir / "nova" / "locks").mkdir(parents=True, exist_ok=True)
    shutil.copy(ctx.venv / "etc" / "nova" / "api-paste.ini", etc / "api-paste.ini")
    (etc / "nova.conf").write_text(_conf(ctx, compute_driver))
    for site in SITES:
        host = compute_host(site)
        state = ctx.state_dir / "nova" / host
        (state / "instances").mkdir(parents=True, exist_ok=True)
        (etc / f"compute-{site}.conf").write_text(
            f"# Rendered by devcloud/services/nova.py: the {site} site's compute host\n"
            f"[DEFAULT]\nhost = {host}\nstate_path = {state}\ninstances_path = {state / 'instances'}\n"
        )


def _sync_databases(ctx: Context) -> None:
    for db in ("nova_api", "nova", "nova_cell0"):
        ctx.create_database(db)
    run_logged(
        ctx,
        "nova-manage",
        [
            str(ctx.venv_bin("python")),
            "-m",
            "devcloud.services.nova_cells",
            str(_etc(ctx) / "nova.conf"),
            ctx.mariadb.url("nova_cell0"),
        ],
    )


def start(ctx: Context) -> None:
    """Databases, conductor, scheduler and API; the compute hosts come in `start_computes`."""
    _sync_databases(ctx)
    etc = _etc(ctx)
    conf = ["--config-file", str(etc / "nova.conf")]
    for daemon in DAEMONS:
        ctx.start_process(daemon, [str(ctx.venv_bin(daemon)), *conf])
    start_api(
        ctx,
        API,
        module="nova.wsgi.osapi_compute",
        port=ports.NOVA,
        env={"OS_NOVA_CONFIG_DIR": str(etc)},
    )
    wait_for_http(ctx, API, f"http://127.0.0.1:{ports.NOVA}/", timeout=120)


def start_computes(ctx: Context) -> None:
    """One nova-compute per site; needs the host prepared (devcloud.machines) first.

    resources.ensure waits until both report up and maps them into the cell.
    """
    etc = _etc(ctx)
    for site, name in zip(SITES, compute_names(), strict=True):
        ctx.start_process(
            name,
            [
                str(ctx.venv_bin("nova-compute")),
                "--config-file",
                str(etc / "nova.conf"),
                "--config-file",
                str(etc / f"compute-{site}.conf"),
            ],
        )
