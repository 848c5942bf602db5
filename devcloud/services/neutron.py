"""Neutron API with ML2 and our agentless `tonle_bridge` mechanism driver; no agents at all.

Routers and floating IPs live in the database only (no L3 agent); devcloud/machines makes
the external network and floating IPs reachable from the host.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.services.common import (
    authtoken_section,
    keystone_auth_options,
    run_logged,
    wait_for_http,
)
from devcloud.services.wsgi import start_api

if TYPE_CHECKING:
    from devcloud.context import Context

NAME = "neutron-api"
#: The provider physical network of the external (floating IP) network.
EXTERNAL_PHYSNET = "external"


def start(ctx: Context) -> None:
    etc = ctx.etc_dir / "neutron"
    etc.mkdir(parents=True, exist_ok=True)
    state = ctx.state_dir / "neutron"
    (state / "locks").mkdir(parents=True, exist_ok=True)
    shutil.copy(ctx.venv / "etc" / "neutron" / "api-paste.ini", etc / "api-paste.ini")
    conf = etc / "neutron.conf"
    conf.write_text(
        f"""# Rendered by devcloud/services/neutron.py
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
allow_overlapping_ips = true
transport_url = {ctx.transport_url}
api_paste_config = {etc / "api-paste.ini"}
state_path = {state}
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
# No agents exist, so nothing may wait for one.
dhcp_agent_notification = false
router_distributed = false
l3_ha = false
debug = false
[database]
connection = {ctx.create_database("neutron")}
max_pool_size = 10
[oslo_concurrency]
lock_path = {state / "locks"}
[oslo_messaging_notifications]
driver = noop
[nova]
{keystone_auth_options(ctx, "neutron")}
[oslo_policy]
enforce_new_defaults = true
enforce_scope = false
"""
        + authtoken_section(ctx, "neutron")
    )
    ml2 = etc / "ml2_conf.ini"
    ml2.write_text(
        f"""# Rendered by devcloud/services/neutron.py
[ml2]
type_drivers = local,flat
tenant_network_types = local
mechanism_drivers = tonle_bridge
extension_drivers = port_security
[ml2_type_flat]
flat_networks = {EXTERNAL_PHYSNET}
[securitygroup]
# No agent filters: devcloud/machines/secgroups.py does, from the compute side.
firewall_driver = noop
enable_security_group = true
"""
    )
    argv = ["--config-file", str(conf), "--config-file", str(ml2)]
    run_logged(
        ctx,
        "neutron-db-manage",
        [str(ctx.venv_bin("neutron-db-manage")), *argv, "upgrade", "heads"],
    )
    start_api(ctx, NAME, module="neutron.wsgi.api", port=ports.NEUTRON, pyargv=argv)
    wait_for_http(ctx, NAME, f"http://127.0.0.1:{ports.NEUTRON}/", timeout=120)
