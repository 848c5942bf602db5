"""Server co-location: a routed network segment for the ministry's own servers, with one
reserved address per declared device. No instances: operators rack the hardware from the work
order, and the devices sit behind a hardened group that lets in only the management network."""

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pulumi_openstack as openstack

from stacks.components.network import TenantNetwork, tenant_network
from stacks.components.security import hardened_security_group
from stacks.config import StackConfig
from stacks.labels import Labels
from stacks.outputs import export_outputs

WATTS_PER_KW = 1000


def device_keys(devices: Sequence[dict[str, Any]]) -> list[str]:
    """A stable key per device: its serial, else its model and its rank among that model, so
    adding a device never renames (and so never re-addresses) the others."""
    seen: Counter[str] = Counter()
    keys = []
    for device in devices:
        base = device.get("serial") or device["model"]
        slug = re.sub(r"[^a-z0-9]+", "-", str(base).lower()).strip("-")
        seen[slug] += 1
        keys.append(slug if seen[slug] == 1 else f"{slug}-{seen[slug]}")
    return keys


def check_fits_plan(devices: Sequence[dict[str, Any]], *, rack_units: int, power_kw: int) -> None:
    """Refuse an order whose devices need more space or power than the plan sells."""
    units = sum(int(device["rack_units"]) for device in devices)
    watts = sum(int(device["power_watts"]) for device in devices)
    if units > rack_units:
        raise ValueError(f"devices need {units} U, the plan has {rack_units} U")
    if watts > power_kw * WATTS_PER_KW:
        raise ValueError(f"devices draw {watts} W, the plan has {power_kw} kW")


def reserve_device_ports(
    labels: Labels,
    network: TenantNetwork,
    group: openstack.networking.SecGroup,
    devices: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    reserved = []
    for key, device in zip(device_keys(devices), devices, strict=True):
        port = openstack.networking.Port(
            f"device-{key}",
            name=labels.name(f"device-{key}"),
            description=labels.description(str(device["model"])[:40]),
            network_id=network.network.id,
            fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=network.subnet.id)],
            security_group_ids=[group.id],
            admin_state_up=True,
            tags=labels.tags,
        )
        reserved.append({**device, "address": port.all_fixed_ips[0]})
    return reserved


def program() -> None:
    config = StackConfig()
    labels = Labels.from_config(config)
    devices: list[dict[str, Any]] = list(config.parameter("devices"))
    rack_units = config.sizes.number("rack_units")
    power_kw = config.sizes.number("power_kw")
    check_fits_plan(devices, rack_units=rack_units, power_kw=power_kw)

    network = tenant_network(config, labels)
    hardened = hardened_security_group(labels, management_cidr=config.management_cidr, public_ports=())
    export_outputs(
        hosts={},  # the ministry's own machines: nothing for Ansible here
        endpoints={
            "network": network.network.name,
            "subnet_cidr": network.subnet.cidr,
            "gateway": network.subnet.gateway_ip,
            "devices": reserve_device_ports(labels, network, hardened.group, devices),
            "rack_units": rack_units,
            "power_kw": power_kw,
            "uplinks": config.sizes.number("uplinks"),
        },
    )
