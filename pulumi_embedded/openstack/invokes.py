"""The data-source functions programs call (`get_image`, `get_flavor`, `get_network`, ...).

Each answers like the provider: the first match's properties (camelCase), or an error that
says what was looked for when nothing matches.
"""

from collections.abc import Callable
from typing import Any

from openstack.connection import Connection

from pulumi_embedded.provider import CloudError


def _none_found(what: str, args: dict[str, Any]) -> CloudError:
    query = ", ".join(f"{k}={v!r}" for k, v in sorted(args.items()) if v not in (None, "", [], {}))
    return CloudError(f"no {what} matches {query or 'the query'}")


def get_image(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    query = {k: v for k, v in {"name": args.get("name"), "visibility": args.get("visibility")}.items() if v}
    images = [i for i in conn.image.images(**query) if not args.get("tags") or set(args["tags"]) <= set(i.tags or [])]
    if not images:
        raise _none_found("image", args)
    if len(images) > 1 and not args.get("mostRecent"):
        raise CloudError(f"{len(images)} images match name={args.get('name')!r}; set most_recent or narrow the query")
    image = max(images, key=lambda i: i.created_at or "")
    return {
        "id": image.id,
        "name": image.name,
        "checksum": image.checksum,
        "diskFormat": image.disk_format,
        "containerFormat": image.container_format,
        "minDiskGb": image.min_disk,
        "minRamMb": image.min_ram,
        "sizeBytes": image.size,
        "visibility": image.visibility,
        "tags": list(image.tags or []),
        "createdAt": image.created_at,
    }


def get_flavor(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("flavorId") or args.get("name"):
        flavor = conn.compute.find_flavor(args.get("flavorId") or args["name"], ignore_missing=True)
    else:
        wanted = {k: args.get(k) for k in ("vcpus", "ram", "disk") if args.get(k) is not None}
        flavor = next(
            (f for f in conn.compute.flavors() if all(getattr(f, k) == int(v or 0) for k, v in wanted.items())), None
        )
    if flavor is None:
        raise _none_found("flavor", args)
    return {
        "id": flavor.id,
        "flavorId": flavor.id,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram": flavor.ram,
        "disk": flavor.disk,
        "swap": flavor.swap or 0,
        "isPublic": flavor.is_public,
    }


def get_network(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    query = {
        k: v
        for k, v in {
            "name": args.get("name"),
            "id": args.get("networkId"),
            "is_router_external": args.get("external"),
            "status": args.get("status"),
        }.items()
        if v is not None
    }
    network = next(iter(conn.network.networks(**query)), None)
    if network is None:
        raise _none_found("network", args)
    return {
        "id": network.id,
        "name": network.name,
        "description": network.description,
        "external": network.is_router_external,
        "shared": network.is_shared,
        "mtu": network.mtu,
        "subnets": list(network.subnet_ids or []),
        "tags": list(network.tags or []),
        "status": network.status,
        "tenantId": network.project_id,
    }


def get_subnet(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    query = {
        k: v
        for k, v in {
            "name": args.get("name"),
            "id": args.get("subnetId"),
            "network_id": args.get("networkId"),
            "cidr": args.get("cidr"),
        }.items()
        if v is not None
    }
    subnet = next(iter(conn.network.subnets(**query)), None)
    if subnet is None:
        raise _none_found("subnet", args)
    return {
        "id": subnet.id,
        "name": subnet.name,
        "cidr": subnet.cidr,
        "networkId": subnet.network_id,
        "gatewayIp": subnet.gateway_ip,
        "ipVersion": subnet.ip_version,
        "enableDhcp": subnet.is_dhcp_enabled,
        "subnetpoolId": subnet.subnet_pool_id,
        "tags": list(subnet.tags or []),
    }


def get_subnet_pool(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    pool = next(iter(conn.network.subnet_pools(**({"name": args["name"]} if args.get("name") else {}))), None)
    if pool is None:
        raise _none_found("subnet pool", args)
    return {
        "id": pool.id,
        "name": pool.name,
        "prefixes": list(pool.prefixes or []),
        "defaultPrefixlen": pool.default_prefix_length,
        "minPrefixlen": pool.minimum_prefix_length,
        "maxPrefixlen": pool.maximum_prefix_length,
        "ipVersion": pool.ip_version,
        "shared": pool.is_shared,
        "isDefault": pool.is_default,
        "tags": list(pool.tags or []),
    }


def get_sec_group(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    query = {k: v for k, v in {"name": args.get("name"), "id": args.get("secgroupId")}.items() if v}
    group = next(iter(conn.network.security_groups(**query)), None)
    if group is None:
        raise _none_found("security group", args)
    return {"id": group.id, "name": group.name, "description": group.description, "tags": list(group.tags or [])}


def get_availability_zones(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    state = args.get("state") or "available"
    zones = [
        z.name for z in conn.compute.availability_zones() if (z.state or {}).get("available") == (state == "available")
    ]
    return {"id": conn.config.get_region_name() or "RegionOne", "names": sorted(zones), "state": state}


def get_dns_zone(conn: Connection, args: dict[str, Any]) -> dict[str, Any]:
    zone = conn.dns.find_zone(args["name"], ignore_missing=True) if args.get("name") else None
    if zone is None:
        raise _none_found("DNS zone", args)
    return {
        "id": zone.id,
        "name": zone.name,
        "email": zone.email,
        "ttl": zone.ttl,
        "type": zone.type,
        "status": zone.status,
        "serial": zone.serial,
        "description": zone.description,
        "masters": list(zone.masters or []),
    }


INVOKES: dict[str, Callable[[Connection, dict[str, Any]], dict[str, Any]]] = {
    "openstack:images/getImage:getImage": get_image,
    "openstack:compute/getFlavor:getFlavor": get_flavor,
    "openstack:networking/getNetwork:getNetwork": get_network,
    "openstack:networking/getSubnet:getSubnet": get_subnet,
    "openstack:networking/getSubnetPool:getSubnetPool": get_subnet_pool,
    "openstack:networking/getSecGroup:getSecGroup": get_sec_group,
    "openstack:compute/getAvailabilityZones:getAvailabilityZones": get_availability_zones,
    "openstack:dns/getDnsZone:getDnsZone": get_dns_zone,
}
