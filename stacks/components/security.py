"""A hardened security group: SSH and ping from the management network only, and the
offering's public ports from anywhere. Nothing else comes in; Neutron's default egress rules
stay, because servers fetch security updates.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from stacks.labels import Labels

ANYWHERE = "0.0.0.0/0"
SSH_PORT = 22


@dataclass(frozen=True)
class PublicPort:
    """A port the offering serves to the whole internet, e.g. HTTPS."""

    port: int
    purpose: str
    protocol: str = "tcp"


@dataclass(frozen=True)
class HardenedGroup:
    group: openstack.networking.SecGroup
    rules: list[openstack.networking.SecGroupRule]


def hardened_security_group(
    labels: Labels, *, management_cidr: str, public_ports: Sequence[PublicPort], role: str = "sg"
) -> HardenedGroup:
    group = openstack.networking.SecGroup(
        role,
        name=labels.name(role),
        description=labels.description("hardened"),
        tags=labels.tags,
    )

    def rule(
        logical: str, *, protocol: str, port: int | None, source: str, what: str
    ) -> openstack.networking.SecGroupRule:
        return openstack.networking.SecGroupRule(
            f"{role}-{logical}",
            security_group_id=group.id,
            direction="ingress",
            ethertype="IPv4",
            protocol=protocol,
            port_range_min=port,
            port_range_max=port,
            remote_ip_prefix=source,
            description=labels.description(what),
            # Every change replaces a rule, and Neutron refuses a duplicate of one that still exists.
            opts=pulumi.ResourceOptions(delete_before_replace=True),
        )

    rules = [
        rule("ssh-management", protocol="tcp", port=SSH_PORT, source=management_cidr, what="ssh from management"),
        # Health checks and operators' ping; ICMP has no ports.
        rule("icmp-management", protocol="icmp", port=None, source=management_cidr, what="icmp from management"),
    ]
    for public in public_ports:
        if public.port == SSH_PORT:
            raise ValueError("SSH is never a public port; it is open to the management network only")
        rules.append(
            rule(
                f"{public.protocol}-{public.port}-public",
                protocol=public.protocol,
                port=public.port,
                source=ANYWHERE,
                what=f"{public.purpose} from anywhere",
            )
        )
    return HardenedGroup(group=group, rules=rules)


#: What web servers (web hosting, CMS) serve; port 80 only redirects to HTTPS.
WEB_PORTS = (PublicPort(80, "http"), PublicPort(443, "https"))
#: What a mail server serves: inbound mail, authenticated submission, and IMAP over TLS.
MAIL_PORTS = (
    PublicPort(25, "smtp"),
    PublicPort(465, "submissions"),
    PublicPort(587, "submission"),
    PublicPort(993, "imaps"),
)
