"""Pulumi stack programs, one module per offering, built from shared components.

The contract between the orchestrator and a program
---------------------------------------------------
Each offering module (`stacks/<stack_program>.py`, named by the catalogue's `stack_program`)
defines `program() -> None`, an inline Pulumi program. Engines run it unmodified: the Pulumi
Automation API where the CLI exists, the embedded engine elsewhere.

Inputs come only from stack configuration, namespace `tonle` (objects are JSON):

| key | value |
|---|---|
| `tonle:ministry` | ministry code, e.g. `health` |
| `tonle:serviceId` / `tonle:requestId` | the service's and the request's UUIDs |
| `tonle:offering` / `tonle:plan` | offering id and plan id |
| `tonle:sizes` | object: the plan's `sizes` from the catalogue (flavor, volume_gb, ...) |
| `tonle:parameters` | object: the order's parameters, already valid against the offering schema |
| `tonle:site` | availability zone of the site to build in, e.g. `primary` |
| `tonle:externalNetwork` | name of the external network that floating IPs come from |
| `tonle:managementCidr` | the only CIDR allowed to reach SSH (where Ansible runs from) |
| `tonle:image` | image name for servers |
| `tonle:subnetPool` | name of the shared subnet pool tenant subnets are cut from |
| `tonle:sshPublicKey` | the service's SSH public key, for the default user |

Provider settings (`openstack:cloud`, `openstack:tenantName`, `openstack:region`) are set by
the orchestrator for the ministry's project; programs use the default provider and never read
them.

Outputs:

| output | value |
|---|---|
| `hosts` | `{name: {"address": ip reachable from the orchestrator, "private_address": ip, "groups": [...], "user": "debian"}}` — the Ansible inventory |
| `endpoints` | what the ministry sees: URLs, IP addresses, DNS names |
| `credentials` | secret: generated credentials (e.g. S3 keys), shown to the ministry once |

Every resource carries the ministry, service and request in its name or metadata.
"""
