"""A tenant network: one subnet cut from the shared subnet pool, routed to the external network."""

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from stacks.config import StackConfig
from stacks.labels import Labels


@dataclass(frozen=True)
class TenantNetwork:
    network: openstack.networking.Network
    subnet: openstack.networking.Subnet
    router: openstack.networking.Router
    router_interface: openstack.networking.RouterInterface


def tenant_network(config: StackConfig, labels: Labels) -> TenantNetwork:
    # The pool hands out the next free prefix, so no two ministries' subnets ever overlap
    # and nobody has to plan addresses by hand.
    pool = openstack.networking.get_subnet_pool_output(name=config.subnet_pool)
    external = openstack.networking.get_network_output(name=config.external_network)

    network = openstack.networking.Network(
        "network",
        name=labels.name("net"),
        admin_state_up=True,
        tags=labels.tags,
    )
    subnet = openstack.networking.Subnet(
        "subnet",
        name=labels.name("subnet"),
        network_id=network.id,
        subnetpool_id=pool.id,
        ip_version=4,
        enable_dhcp=True,
        # Servers resolve with the data centre's DNS (how mail servers find each other's MX and
        # DKIM keys); None, not [], keeps stacks built before this setting free of a diff.
        dns_nameservers=config.dns_resolvers or None,
        tags=labels.tags,
    )
    router = openstack.networking.Router(
        "router",
        name=labels.name("router"),
        external_network_id=external.id,
        admin_state_up=True,
        tags=labels.tags,
    )
    interface = openstack.networking.RouterInterface(
        "router-interface",
        router_id=router.id,
        subnet_id=subnet.id,
    )
    return TenantNetwork(network=network, subnet=subnet, router=router, router_interface=interface)


def routed(network: TenantNetwork) -> pulumi.ResourceOptions:
    """Options for a resource that needs the subnet attached to the router (floating IPs)."""
    return pulumi.ResourceOptions(depends_on=[network.router_interface])
