"""Floating IPs: read Neutron's associations and program the host's NAT (net.py).

Neutron has no L3 agent here and tells Nova nothing when a floating IP is associated, so the
Nova driver polls Neutron (`sync_from_neutron`, every couple of seconds) with its admin client.
Both compute hosts share one host and one NAT table; each computes the mapping for every
machine of the data dir, so their syncs agree instead of fighting. Entries of other data dirs
(a test run beside the cloud) are left alone.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from devcloud.machines import net
from devcloud.machines.layout import Layout
from devcloud.machines.machine import MachineError, list_machines

log = logging.getLogger("devcloud.machines.floating")

#: Whose entries these are in the host's NAT table (see net.sync_floating_ips).
OWNER = "nova"
# network id -> its subnets; an external network's subnets do not change under us.
_external_subnets: dict[str, list[net.Subnet]] = {}


def local_ports(layout: Layout) -> dict[str, set[str]]:
    """port id -> IPv4 fixed addresses, for every machine on this host."""
    ports: dict[str, set[str]] = {}
    for m in list_machines(layout):
        try:
            nics = m.nics()
        except (OSError, ValueError, MachineError):  # a machine being destroyed right now
            continue
        for nic in nics:
            ports[nic.port_id] = {
                ip for s in nic.subnets for ip in s.fixed_ips if ipaddress.ip_address(ip).version == 4
            }
    return ports


def sync_from_neutron(layout: Layout, client: Any) -> bool:
    """Make the host's NAT match Neutron's floating IPs of local machines.

    `client` is a neutronclient v2 Client (Nova's `neutron.get_client(ctx, admin=True)`).
    Returns True if anything changed.
    """
    ports = local_ports(layout)
    if not ports and not net.owned_floating_ips(layout, OWNER):
        return False  # nothing to do and nothing to undo: spare Neutron the call
    wanted: dict[str, str] = {}
    for fip in client.list_floatingips()["floatingips"]:
        fixed = fip.get("fixed_ip_address")
        if fip.get("port_id") in ports and fixed in ports[fip["port_id"]]:
            wanted[fip["floating_ip_address"]] = fixed
            _ensure_external_bridge(layout, client, fip["floating_network_id"])
    return net.sync_floating_ips(layout, wanted, OWNER)


def _ensure_external_bridge(layout: Layout, client: Any, network_id: str) -> None:
    """The host holds the external subnet's gateway address on the external network's bridge,
    so floating addresses are on-link here and never routed out of the host's uplink."""
    if network_id not in _external_subnets:
        subnets = client.list_subnets(network_id=network_id)["subnets"]
        _external_subnets[network_id] = [
            net.Subnet(cidr=s["cidr"], gateway=s.get("gateway_ip")) for s in subnets if s.get("ip_version", 4) == 4
        ]
    net.ensure_bridge(layout, net.bridge_name(network_id), _external_subnets[network_id])


def prune(layout: Layout) -> None:
    """Drop NAT entries whose fixed address no longer belongs to any machine (after a delete),
    without waiting for the next sync."""
    mine = net.owned_floating_ips(layout, OWNER)
    live = {ip for ips in local_ports(layout).values() for ip in ips}
    kept = {f: x for f, x in mine.items() if x in live}
    if kept != mine:
        net.sync_floating_ips(layout, kept, OWNER)
