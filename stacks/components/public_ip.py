"""A floating IP from the external network, bound to a server's port."""

import pulumi_openstack as openstack

from stacks.components.network import TenantNetwork, routed
from stacks.components.server import Server
from stacks.config import StackConfig
from stacks.labels import Labels


def floating_ip(
    config: StackConfig, labels: Labels, *, network: TenantNetwork, server: Server
) -> openstack.networking.FloatingIp:
    # Bound through the port rather than a separate association, so one resource holds both
    # the address and where it points; Neutron refuses it until the subnet is routed.
    return openstack.networking.FloatingIp(
        f"{server.role}-public-ip",
        pool=config.external_network,
        port_id=server.port.id,
        description=labels.description(f"{server.role} public address"),
        tags=labels.tags,
        opts=routed(network),
    )
