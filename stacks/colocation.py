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
    """Refuse an order whose devices need more space or power than the plan sells (a ceiling;
    whether they fit a real rack is the DCIM placement's decision at approval)."""
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
    """A port with a fixed IP per NIC of each device (`device-<name>-nic<i>`). Each device is
    listed with all its addresses (`ip_addresses`, NIC order) and its first one (`address`)."""
    reserved = []
    for key, device in zip(device_keys(devices), devices, strict=True):
        name = str(device.get("name") or key)
        addresses = []
        for nic in range(1, int(device.get("nic_count") or 1) + 1):
            port = openstack.networking.Port(
                f"device-{name}-nic{nic}" if device.get("name") else _legacy_port_name(key, nic),
                name=labels.name(f"device-{name}-nic{nic}"),
                description=labels.description(str(device["model"])[:40]),
                network_id=network.network.id,
                fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=network.subnet.id)],
                security_group_ids=[group.id],
                admin_state_up=True,
                tags=labels.tags,
            )
            addresses.append(port.all_fixed_ips[0])
        reserved.append({**device, "name": name, "address": addresses[0], "ip_addresses": addresses})
    return reserved


def _legacy_port_name(key: str, nic: int) -> str:
    """Devices ordered before they had names keep their ports' names (a rename would replace
    the port and change its address)."""
    return f"device-{key}" if nic == 1 else f"device-{key}-nic{nic}"


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
            # The order the DCIM's devices belong to (`tonle_order`): what the `dcim` health check asks about.
            "dcim_order": config.service_id,
        },
    )
