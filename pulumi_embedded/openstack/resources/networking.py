"""Neutron: networks, subnets, routers and their interfaces, security groups, ports, floating IPs."""

from typing import Any

from openstack.connection import Connection

from pulumi_embedded.openstack.resources.base import (
    Handler,
    changed,
    integer,
    ordered_like,
    some,
)
from pulumi_embedded.provider import CloudError, Created


def _set_tags(conn: Connection, resource: Any, tags: list[str] | None) -> None:
    if tags is not None:
        conn.network.set_tags(resource, list(tags))


def _first(items: Any) -> Any:
    return next(iter(items), None)


class Network(Handler):
    type_ = "openstack:networking/network:Network"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        net = conn.network.create_network(
            **some(
                name=inputs.get("name"),
                description=inputs.get("description"),
                admin_state_up=inputs.get("adminStateUp"),
                shared=inputs.get("shared"),
                mtu=integer(inputs.get("mtu")),
                is_port_security_enabled=inputs.get("portSecurityEnabled"),
                is_router_external=inputs.get("external"),
            )
        )
        _set_tags(conn, net, inputs.get("tags"))
        return Created(net.id, self._outputs(inputs, conn.network.get_network(net.id)))

    def _outputs(self, inputs: dict[str, Any], net: Any) -> dict[str, Any]:
        return {
            **inputs,
            "id": net.id,
            "name": net.name,
            "adminStateUp": net.is_admin_state_up,
            "mtu": net.mtu,
            "allTags": ordered_like(inputs.get("tags"), net.tags),
            "tenantId": net.project_id,
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        net = conn.network.find_network(id_, ignore_missing=True)
        return None if net is None else self._outputs(inputs, net)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if changed(old, new, "name", "description", "adminStateUp", "shared", "mtu", "portSecurityEnabled"):
            conn.network.update_network(
                id_,
                **some(
                    name=new.get("name"),
                    description=new.get("description"),
                    admin_state_up=new.get("adminStateUp"),
                    shared=new.get("shared"),
                    mtu=integer(new.get("mtu")),
                    is_port_security_enabled=new.get("portSecurityEnabled"),
                ),
            )
        net = conn.network.get_network(id_)
        if changed(old, new, "tags"):
            _set_tags(conn, net, new.get("tags") or [])
        return self._outputs(new, conn.network.get_network(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.network.delete_network(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        net = _first(conn.network.networks(name=inputs.get("name"))) if inputs.get("name") else None
        return None if net is None else Created(net.id, self._outputs(inputs, net))


class Subnet(Handler):
    type_ = "openstack:networking/subnet:Subnet"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        subnet = conn.network.create_subnet(
            **some(
                name=inputs.get("name"),
                description=inputs.get("description"),
                network_id=inputs.get("networkId"),
                cidr=inputs.get("cidr"),
                subnet_pool_id=inputs.get("subnetpoolId"),
                prefix_length=integer(inputs.get("prefixLength")),
                ip_version=integer(inputs.get("ipVersion")) or 4,
                is_dhcp_enabled=inputs.get("enableDhcp"),
                gateway_ip=inputs.get("gatewayIp"),
                dns_nameservers=inputs.get("dnsNameservers"),
                allocation_pools=inputs.get("allocationPools"),
                ipv6_address_mode=inputs.get("ipv6AddressMode"),
                ipv6_ra_mode=inputs.get("ipv6RaMode"),
            )
        )
        _set_tags(conn, subnet, inputs.get("tags"))
        return Created(subnet.id, self._outputs(inputs, conn.network.get_subnet(subnet.id)))

    def _outputs(self, inputs: dict[str, Any], subnet: Any) -> dict[str, Any]:
        return {
            **inputs,
            "id": subnet.id,
            "name": subnet.name,
            "cidr": subnet.cidr,
            "networkId": subnet.network_id,
            "gatewayIp": subnet.gateway_ip,
            "enableDhcp": subnet.is_dhcp_enabled,
            "allocationPools": [dict(p) for p in subnet.allocation_pools or []],
            "ipVersion": subnet.ip_version,
            "allTags": ordered_like(inputs.get("tags"), subnet.tags),
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        subnet = conn.network.find_subnet(id_, ignore_missing=True)
        return None if subnet is None else self._outputs(inputs, subnet)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "description", "enableDhcp", "gatewayIp", "dnsNameservers", "allocationPools")
        if changed(old, new, *keys):
            conn.network.update_subnet(
                id_,
                **some(
                    name=new.get("name"),
                    description=new.get("description"),
                    is_dhcp_enabled=new.get("enableDhcp"),
                    gateway_ip=new.get("gatewayIp"),
                    # Dropped from the program means none, as the provider sends it; `some` would
                    # leave the old ones in place.
                    dns_nameservers=new.get("dnsNameservers") or [] if changed(old, new, "dnsNameservers") else None,
                    allocation_pools=new.get("allocationPools"),
                ),
            )
        if changed(old, new, "tags"):
            _set_tags(conn, conn.network.get_subnet(id_), new.get("tags") or [])
        return self._outputs(new, conn.network.get_subnet(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.network.delete_subnet(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        if not inputs.get("name"):
            return None
        subnet = _first(conn.network.subnets(name=inputs["name"], network_id=inputs.get("networkId")))
        return None if subnet is None else Created(subnet.id, self._outputs(inputs, subnet))


class Router(Handler):
    type_ = "openstack:networking/router:Router"

    def _gateway(self, inputs: dict[str, Any]) -> dict[str, Any] | None:
        if not inputs.get("externalNetworkId"):
            return None
        return some(network_id=inputs["externalNetworkId"], enable_snat=inputs.get("enableSnat"))

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        router = conn.network.create_router(
            **some(
                name=inputs.get("name"),
                description=inputs.get("description"),
                admin_state_up=inputs.get("adminStateUp"),
                external_gateway_info=self._gateway(inputs),
                is_distributed=inputs.get("distributed"),
            )
        )
        _set_tags(conn, router, inputs.get("tags"))
        return Created(router.id, self._outputs(inputs, conn.network.get_router(router.id)))

    def _outputs(self, inputs: dict[str, Any], router: Any) -> dict[str, Any]:
        gateway = router.external_gateway_info or {}
        return {
            **inputs,
            "id": router.id,
            "name": router.name,
            "adminStateUp": router.is_admin_state_up,
            "externalNetworkId": gateway.get("network_id"),
            "enableSnat": gateway.get("enable_snat"),
            "externalFixedIps": [
                {"subnetId": ip.get("subnet_id"), "ipAddress": ip.get("ip_address")}
                for ip in gateway.get("external_fixed_ips") or []
            ],
            "allTags": ordered_like(inputs.get("tags"), router.tags),
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        router = conn.network.find_router(id_, ignore_missing=True)
        return None if router is None else self._outputs(inputs, router)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if changed(old, new, "name", "description", "adminStateUp", "externalNetworkId", "enableSnat"):
            conn.network.update_router(
                id_,
                **some(
                    name=new.get("name"),
                    description=new.get("description"),
                    admin_state_up=new.get("adminStateUp"),
                ),
                external_gateway_info=self._gateway(new) or {},
            )
        if changed(old, new, "tags"):
            _set_tags(conn, conn.network.get_router(id_), new.get("tags") or [])
        return self._outputs(new, conn.network.get_router(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.network.delete_router(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        router = _first(conn.network.routers(name=inputs.get("name"))) if inputs.get("name") else None
        return None if router is None else Created(router.id, self._outputs(inputs, router))


class RouterInterface(Handler):
    """Its id is the router port's id, as in the provider."""

    type_ = "openstack:networking/routerInterface:RouterInterface"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        result = conn.network.add_interface_to_router(
            inputs["routerId"], **some(subnet=inputs.get("subnetId"), port=inputs.get("portId"))
        )
        port_id = result["port_id"]
        return Created(port_id, self._outputs(inputs, port_id, result.get("subnet_id")))

    def _outputs(self, inputs: dict[str, Any], port_id: str, subnet_id: str | None) -> dict[str, Any]:
        return {**inputs, "id": port_id, "portId": port_id, "subnetId": inputs.get("subnetId") or subnet_id}

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        port = conn.network.find_port(id_, ignore_missing=True)
        if port is None or port.device_id != inputs.get("routerId"):
            return None
        subnet = (port.fixed_ips or [{}])[0].get("subnet_id")
        return self._outputs(inputs, port.id, subnet)

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        router = conn.network.find_router(outputs["routerId"], ignore_missing=True)
        if router is None or conn.network.find_port(id_, ignore_missing=True) is None:
            return
        conn.network.remove_interface_from_router(router, port=id_)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        for port in conn.network.ports(device_id=inputs["routerId"]):
            subnets = {ip.get("subnet_id") for ip in port.fixed_ips or []}
            if inputs.get("portId") == port.id or inputs.get("subnetId") in subnets:
                return Created(port.id, self._outputs(inputs, port.id, inputs.get("subnetId")))
        return None


class SecGroup(Handler):
    type_ = "openstack:networking/secGroup:SecGroup"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        group = conn.network.create_security_group(
            **some(name=inputs.get("name"), description=inputs.get("description"), stateful=inputs.get("stateful"))
        )
        if inputs.get("deleteDefaultRules"):
            for rule in conn.network.security_group_rules(security_group_id=group.id):
                conn.network.delete_security_group_rule(rule, ignore_missing=True)
        _set_tags(conn, group, inputs.get("tags"))
        return Created(group.id, self._outputs(inputs, conn.network.get_security_group(group.id)))

    def _outputs(self, inputs: dict[str, Any], group: Any) -> dict[str, Any]:
        return {
            **inputs,
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "allTags": ordered_like(inputs.get("tags"), group.tags),
            "tenantId": group.project_id,
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        group = conn.network.find_security_group(id_, ignore_missing=True)
        return None if group is None else self._outputs(inputs, group)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if changed(old, new, "name", "description", "stateful"):
            conn.network.update_security_group(
                id_, **some(name=new.get("name"), description=new.get("description"), stateful=new.get("stateful"))
            )
        if changed(old, new, "tags"):
            _set_tags(conn, conn.network.get_security_group(id_), new.get("tags") or [])
        return self._outputs(new, conn.network.get_security_group(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.network.delete_security_group(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        group = _first(conn.network.security_groups(name=inputs.get("name"))) if inputs.get("name") else None
        return None if group is None else Created(group.id, self._outputs(inputs, group))


class SecGroupRule(Handler):
    """Every property forces replacement, as in the provider: no update."""

    type_ = "openstack:networking/secGroupRule:SecGroupRule"

    def _attrs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return some(
            security_group_id=inputs.get("securityGroupId"),
            direction=inputs.get("direction"),
            ether_type=inputs.get("ethertype") or "IPv4",
            protocol=inputs.get("protocol"),
            port_range_min=integer(inputs.get("portRangeMin")),
            port_range_max=integer(inputs.get("portRangeMax")),
            remote_ip_prefix=inputs.get("remoteIpPrefix"),
            remote_group_id=inputs.get("remoteGroupId"),
            description=inputs.get("description"),
        )

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        rule = conn.network.create_security_group_rule(**self._attrs(inputs))
        return Created(rule.id, {**inputs, "id": rule.id, "tenantId": rule.project_id})

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        rule = conn.network.find_security_group_rule(id_, ignore_missing=True)
        if rule is None:
            return None
        return {
            **inputs,
            "id": rule.id,
            "direction": rule.direction,
            "protocol": rule.protocol,
            "portRangeMin": rule.port_range_min,
            "portRangeMax": rule.port_range_max,
            "remoteIpPrefix": rule.remote_ip_prefix,
        }

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.network.delete_security_group_rule(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        wanted = self._attrs(inputs)
        group = wanted.pop("security_group_id", None)
        wanted.pop("description", None)
        for rule in conn.network.security_group_rules(security_group_id=group):
            if all(getattr(rule, k, None) == v for k, v in wanted.items()):
                return Created(rule.id, {**inputs, "id": rule.id})
        return None


class Port(Handler):
    type_ = "openstack:networking/port:Port"

    def _attrs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        fixed = [
            some(subnet_id=ip.get("subnetId"), ip_address=ip.get("ipAddress")) for ip in inputs.get("fixedIps") or []
        ]
        groups = [] if inputs.get("noSecurityGroups") else inputs.get("securityGroupIds")
        return some(
            name=inputs.get("name"),
            description=inputs.get("description"),
            admin_state_up=inputs.get("adminStateUp"),
            fixed_ips=fixed or None,
            security_group_ids=groups,
            is_port_security_enabled=inputs.get("portSecurityEnabled"),
            allowed_address_pairs=[
                some(ip_address=p.get("ipAddress"), mac_address=p.get("macAddress"))
                for p in inputs.get("allowedAddressPairs") or []
            ]
            or None,
        )

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        port = conn.network.create_port(
            network_id=inputs["networkId"],
            **some(
                mac_address=inputs.get("macAddress"),
                device_id=inputs.get("deviceId"),
                device_owner=inputs.get("deviceOwner"),
            ),
            **self._attrs(inputs),
        )
        _set_tags(conn, port, inputs.get("tags"))
        return Created(port.id, self._outputs(inputs, conn.network.get_port(port.id)))

    def _outputs(self, inputs: dict[str, Any], port: Any) -> dict[str, Any]:
        return {
            **inputs,
            "id": port.id,
            "name": port.name,
            "macAddress": port.mac_address,
            "allFixedIps": [ip["ip_address"] for ip in port.fixed_ips or []],
            "allSecurityGroupIds": ordered_like(inputs.get("securityGroupIds"), port.security_group_ids),
            "allTags": ordered_like(inputs.get("tags"), port.tags),
            "adminStateUp": port.is_admin_state_up,
            "deviceId": port.device_id,
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        port = conn.network.find_port(id_, ignore_missing=True)
        return None if port is None else self._outputs(inputs, port)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "description", "adminStateUp", "fixedIps", "securityGroupIds", "noSecurityGroups")
        if changed(old, new, *keys, "portSecurityEnabled", "allowedAddressPairs"):
            attrs = self._attrs(new)
            if new.get("noSecurityGroups") or not new.get("securityGroupIds"):
                attrs["security_group_ids"] = []
            conn.network.update_port(id_, **attrs)
        if changed(old, new, "tags"):
            _set_tags(conn, conn.network.get_port(id_), new.get("tags") or [])
        return self._outputs(new, conn.network.get_port(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.network.delete_port(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        if not inputs.get("name"):
            return None
        port = _first(conn.network.ports(name=inputs["name"], network_id=inputs.get("networkId")))
        return None if port is None else Created(port.id, self._outputs(inputs, port))


class FloatingIp(Handler):
    type_ = "openstack:networking/floatingIp:FloatingIp"

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        network = conn.network.find_network(inputs["pool"], ignore_missing=False)
        ip = conn.network.create_ip(
            floating_network_id=network.id,
            **some(
                port_id=inputs.get("portId"),
                fixed_ip_address=inputs.get("fixedIp"),
                floating_ip_address=inputs.get("address"),
                subnet_id=inputs.get("subnetId"),
                description=inputs.get("description"),
                dns_name=inputs.get("dnsName"),
                dns_domain=inputs.get("dnsDomain"),
            ),
        )
        _set_tags(conn, ip, inputs.get("tags"))
        return Created(ip.id, self._outputs(inputs, conn.network.get_ip(ip.id)))

    def _outputs(self, inputs: dict[str, Any], ip: Any) -> dict[str, Any]:
        return {
            **inputs,
            "id": ip.id,
            "address": ip.floating_ip_address,
            "portId": ip.port_id,
            "fixedIp": ip.fixed_ip_address,
            "description": ip.description,
            "allTags": ordered_like(inputs.get("tags"), ip.tags),
        }

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        ip = conn.network.find_ip(id_, ignore_missing=True)
        return None if ip is None else self._outputs(inputs, ip)

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if changed(old, new, "portId", "fixedIp", "description"):
            conn.network.update_ip(
                id_,
                port_id=new.get("portId"),
                **some(fixed_ip_address=new.get("fixedIp"), description=new.get("description")),
            )
        if changed(old, new, "tags"):
            _set_tags(conn, conn.network.get_ip(id_), new.get("tags") or [])
        return self._outputs(new, conn.network.get_ip(id_))

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        conn.network.delete_ip(id_, ignore_missing=True)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        if inputs.get("portId"):
            ip = _first(conn.network.ips(port_id=inputs["portId"]))
            if ip is not None:
                return Created(ip.id, self._outputs(inputs, ip))
        return None


class FloatingIpAssociate(Handler):
    """Binds an existing floating IP (by address) to a port; its id is the floating IP's id."""

    type_ = "openstack:networking/floatingIpAssociate:FloatingIpAssociate"

    def _ip(self, conn: Connection, address: str) -> Any:
        ip = _first(conn.network.ips(floating_ip_address=address))
        if ip is None:
            raise CloudError(f"floating IP {address} does not exist")
        return ip

    def create(self, conn: Connection, inputs: dict[str, Any]) -> Created:
        ip = self._ip(conn, inputs["floatingIp"])
        conn.network.update_ip(ip, port_id=inputs["portId"], **some(fixed_ip_address=inputs.get("fixedIp")))
        return Created(ip.id, {**inputs, "id": ip.id})

    def read(self, conn: Connection, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        ip = conn.network.find_ip(id_, ignore_missing=True)
        if ip is None or not ip.port_id:
            return None
        return {**inputs, "id": ip.id, "portId": ip.port_id, "floatingIp": ip.floating_ip_address}

    def update(self, conn: Connection, id_: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        conn.network.update_ip(id_, port_id=new["portId"], **some(fixed_ip_address=new.get("fixedIp")))
        return {**new, "id": id_}

    def delete(self, conn: Connection, id_: str, outputs: dict[str, Any]) -> None:
        if conn.network.find_ip(id_, ignore_missing=True) is not None:
            conn.network.update_ip(id_, port_id=None)

    def find(self, conn: Connection, inputs: dict[str, Any]) -> Created | None:
        ip = _first(conn.network.ips(floating_ip_address=inputs["floatingIp"]))
        if ip is not None and ip.port_id == inputs.get("portId"):
            return Created(ip.id, {**inputs, "id": ip.id})
        return None


HANDLERS: list[Handler] = [
    Network(),
    Subnet(),
    Router(),
    RouterInterface(),
    SecGroup(),
    SecGroupRule(),
    Port(),
    FloatingIp(),
    FloatingIpAssociate(),
]
