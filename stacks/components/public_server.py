"""The shape shared by the hosted offerings: one server on its own routed network, behind the
hardened group, reachable at a floating IP."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_openstack as openstack

from stacks.components.network import TenantNetwork, tenant_network
from stacks.components.public_ip import floating_ip
from stacks.components.security import Isolation, PublicPort, hardened_security_group
from stacks.components.server import Server, server
from stacks.config import StackConfig
from stacks.labels import Labels
from stacks.outputs import host_entry


@dataclass(frozen=True)
class PublicServer:
    network: TenantNetwork
    server: Server
    public_ip: openstack.networking.FloatingIp

    @property
    def address(self) -> pulumi.Output[str]:
        return self.public_ip.address

    def hosts(self) -> dict[str, Any]:
        # Ansible connects through the floating IP: the orchestrator sits in the management
        # network, which the hardened group lets in on SSH.
        return {self.server.role: host_entry(self.server, address=self.address)}


def public_server(
    config: StackConfig,
    labels: Labels,
    *,
    role: str,
    groups: Sequence[str],
    public_ports: Sequence[PublicPort],
    volumes_gb: Mapping[str, int],
) -> PublicServer:
    network = tenant_network(config, labels)
    # A drill's copy reaches its own subnet and the allowed CIDRs only; a failover copy is the
    # service for real and keeps the ordinary egress.
    isolation = (
        Isolation(own_subnet=network.subnet.cidr, allowed=config.egress_allowed) if config.copy == "drill" else None
    )
    hardened = hardened_security_group(
        labels, management_cidr=config.management_cidr, public_ports=public_ports, isolation=isolation
    )
    machine = server(
        config,
        labels,
        role=role,
        groups=groups,
        network=network,
        security_groups=[hardened.group],
        volumes_gb=volumes_gb,
    )
    public_ip = floating_ip(config, labels, network=network, server=machine)
    return PublicServer(network=network, server=machine, public_ip=public_ip)
