"""A service server: a port on the tenant network behind the hardened group, an instance booted
from the site's image with cloud-init, and data volumes (sizes from the plan) attached to it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from stacks.components.cloud_init import user_data
from stacks.components.network import TenantNetwork
from stacks.config import StackConfig
from stacks.labels import Labels

DEFAULT_USER = "debian"  # the default user of the data centre's Debian images


@dataclass(frozen=True)
class DataVolume:
    volume: openstack.blockstorage.Volume
    attachment: openstack.compute.VolumeAttach


@dataclass(frozen=True)
class Server:
    role: str
    groups: list[str]
    port: openstack.networking.Port
    instance: openstack.compute.Instance
    volumes: dict[str, DataVolume]

    @property
    def private_address(self) -> pulumi.Output[str]:
        return self.port.all_fixed_ips[0]


def server(
    config: StackConfig,
    labels: Labels,
    *,
    role: str,
    groups: Sequence[str],
    network: TenantNetwork,
    security_groups: Sequence[openstack.networking.SecGroup],
    volumes_gb: Mapping[str, int],
) -> Server:
    """`volumes_gb` maps a volume's purpose (e.g. `data`, `db`) to its size from the plan."""
    image = openstack.images.get_image_output(name=config.image, most_recent=True)
    flavor = openstack.compute.get_flavor_output(name=config.sizes.flavor)

    # An explicit port keeps the private address and the floating IP's association stable
    # even if the instance is replaced.
    port = openstack.networking.Port(
        f"{role}-port",
        name=labels.name(f"{role}-port"),
        network_id=network.network.id,
        fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=network.subnet.id)],
        security_group_ids=[group.id for group in security_groups],
        admin_state_up=True,
        tags=labels.tags,
    )
    instance = openstack.compute.Instance(
        role,
        name=labels.name(role),
        image_id=image.id,
        flavor_id=flavor.id,
        availability_zone=config.site,
        networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
        user_data=user_data(labels, hostname=labels.hostname(role), ssh_public_key=config.ssh_public_key),
        metadata={**labels.metadata, "tonle_role": role},
        opts=pulumi.ResourceOptions(
            # The replacement needs the port (and the volumes) the old server holds.
            delete_before_replace=True,
            # First-boot inputs: a newer image or a rotated key reaches a running server through
            # Ansible, never by silently rebuilding it; a rebuild is a deliberate operation.
            ignore_changes=["image_id", "user_data"],
        ),
    )
    volumes: dict[str, DataVolume] = {}
    for purpose, size_gb in volumes_gb.items():
        volume = openstack.blockstorage.Volume(
            f"{role}-{purpose}-volume",
            name=labels.name(f"{role}-{purpose}"),
            description=labels.description(f"{purpose} volume"),
            size=size_gb,
            availability_zone=config.site,
            metadata={**labels.metadata, "tonle_purpose": purpose},
            # A bigger plan grows the volume in place while it stays attached.
            enable_online_resize=True,
        )
        attachment = openstack.compute.VolumeAttach(
            f"{role}-{purpose}-attach",
            instance_id=instance.id,
            volume_id=volume.id,
            # A volume attaches to one server at a time: detach before attaching elsewhere.
            opts=pulumi.ResourceOptions(delete_before_replace=True),
        )
        volumes[purpose] = DataVolume(volume=volume, attachment=attachment)
    return Server(role=role, groups=list(groups), port=port, instance=instance, volumes=volumes)
