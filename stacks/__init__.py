"""Pulumi stack programs, one module per offering, built from shared components.

The contract between the orchestrator and a program
---------------------------------------------------
Each offering module (`stacks/<stack_program>.py`, named by the catalogue's `stack_program`)
defines `program() -> None`, an inline Pulumi program. Engines run it unmodified: the Pulumi
Automation API where the CLI exists, the embedded engine elsewhere.

Inputs come only from stack configuration, namespace `tonle` (objects are JSON). The
orchestrator sets every key for every stack; a program reads (and so requires) only those it
uses, and a missing one fails naming the key:

| key | value |
|---|---|
| `tonle:ministry` | ministry code, e.g. `health` |
| `tonle:serviceId` / `tonle:requestId` | the service's and the request's UUIDs |
| `tonle:offering` / `tonle:plan` | offering id and plan id |
| `tonle:sizes` | object: the plan's `sizes` from the catalogue (flavor, volume_gb, ...) |
| `tonle:parameters` | object: the order's parameters, already valid against the offering schema |
| `tonle:site` | availability zone of the site to build in, e.g. `primary` |
| `tonle:externalNetwork` | name of the external network that floating IPs come from |
| `tonle:managementCidr` | the only CIDR allowed to reach SSH (where Ansible runs from); never `/0` |
| `tonle:image` | image name for servers |
| `tonle:subnetPool` | name of the shared subnet pool tenant subnets are cut from |
| `tonle:dnsResolvers` | optional: resolver addresses the subnet hands its servers (`dns_nameservers`) |
| `tonle:sshPublicKey` | the service's SSH public key, for the default user |
| `tonle:copy` | optional; absent: the service itself; `drill` or `failover`: a copy of it at the DR site |
| `tonle:copyId` | with `tonle:copy`: tells this copy from others (the operation's short id) |
| `tonle:egressAllowed` | optional: CIDRs a `drill` copy may reach besides its subnet (S3 for instances) |
| `tonle:mail` | mail offerings: object `domain`, `dkimSelector`, `dkimPublicKey`, `mtaStsPolicyId`, `mtaStsUntil` |

`tonle:mail.mtaStsUntil` (ISO timestamp, optional) is when the certificate serving the MTA-STS
policy expires: absent or past, the program publishes no `_mta-sts` record.

Copies (`orchestrator/workflows/dr_copy.py` builds them, in a stack of their own). Every name,
tag and description of a copy carries `<copy>-<copyId>` (`stacks/labels.py`), so it never collides
with the service and what it leaves behind is found by name. A copy makes no DNS zone or record.
- `drill`: isolated. Its security group has Neutron's default egress rules deleted and allows
  egress only to its own subnet (the gateway there is the apt proxy) and `tonle:egressAllowed`;
  its public ports open to the management network only. It has no way to production.
- `failover`: the service for real at the DR site; ordinary egress and public ports. The
  orchestrator repoints the production DNS records to it.

Provider settings (`openstack:cloud`, `openstack:tenantName`, `openstack:region`) are set by
the orchestrator for the ministry's project; programs use the default provider and never read
them. Stacks are built at the primary site. The DR backup target's bucket is not a stack resource: an
offering with `s3_bucket: true` gets its bucket at the DR site, a Keystone user of its own and that
user's EC2 credential from the orchestrator (which holds the admin entry those need), added to the
stack's `endpoints` and `credentials` (`orchestrator/workflows/steps.py`).

Outputs:

| output | value |
|---|---|
| `hosts` | the Ansible inventory: `{name: {"address", "private_address", "server_id", "groups", "user", "volumes"}}` |
| `endpoints` | what the ministry sees: URLs, IP addresses, DNS names |
| `credentials` | secret (always, even when empty): credentials the cloud generates, shown once |

In `hosts`, `address` is reachable from the orchestrator (the floating IP), `private_address` is
the server's fixed IP, `server_id` the Nova server (whose console gives its SSH host keys at first
boot), `user` is the image's default user (`debian`), and `volumes` maps a
volume's purpose (`data`, `db`, `mail`) to `{"id": Cinder volume id, "device": as Nova reports
it}`: find the disk by id (`/dev/disk/by-id/*<id[:20]>`), the device name is only a hint.
Offerings without servers (co-location, DR backup) export `hosts` as `{}`.

Every resource carries the ministry, service and request in its name, tags, metadata or
description, except the two types that have none of these (`RouterInterface`,
`VolumeAttach`); like every resource, their URNs carry the stack name
(ministry, offering, service). Names carry only what never changes for a service's life, so a
name never forces a replacement.

What the engines must support
-----------------------------
`RESOURCE_TYPES` and `INVOKES` below list every type token and lookup the programs use; the
unit tests keep them exact. Programs always pass explicit names (no auto-naming) and use only
the default provider. Resource options they set:

- `delete_before_replace` on `Instance` (its successor needs the same port), `VolumeAttach` (a
  volume attaches to one server at a time) and `SecGroupRule` (Neutron refuses a duplicate rule);
- `ignore_changes=["imageId", "userData"]` on `Instance`: first-boot inputs never rebuild a
  running server (a new image or a rotated key reaches it through Ansible);
- `depends_on` the `RouterInterface` for `FloatingIp` (Neutron refuses a floating IP for a port
  whose subnet is not routed to the external network).
"""

RESOURCE_TYPES = frozenset(
    {
        "openstack:networking/network:Network",
        "openstack:networking/subnet:Subnet",
        "openstack:networking/router:Router",
        "openstack:networking/routerInterface:RouterInterface",
        "openstack:networking/port:Port",
        "openstack:networking/secGroup:SecGroup",
        "openstack:networking/secGroupRule:SecGroupRule",
        "openstack:networking/floatingIp:FloatingIp",
        "openstack:compute/instance:Instance",
        "openstack:compute/volumeAttach:VolumeAttach",
        "openstack:blockstorage/volume:Volume",
        "openstack:dns/zone:Zone",
        "openstack:dns/recordSet:RecordSet",
    }
)

INVOKES = frozenset(
    {
        "openstack:images/getImage:getImage",
        "openstack:compute/getFlavor:getFlavor",
        "openstack:networking/getNetwork:getNetwork",
        "openstack:networking/getSubnetPool:getSubnetPool",
    }
)
