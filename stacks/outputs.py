"""The three stack outputs of the contract: `hosts`, `endpoints` and `credentials`."""

from collections.abc import Mapping
from typing import Any

import pulumi

from stacks.components.server import DEFAULT_USER, Server


def host_entry(server: Server, *, address: pulumi.Input[str]) -> dict[str, Any]:
    """One host of the Ansible inventory. `volumes` maps a purpose to its Cinder volume id and
    the device Nova reported, so playbooks find the right disk (by id, not by order)."""
    return {
        "address": address,
        "private_address": server.private_address,
        # The orchestrator reads this server's console for its SSH host keys (pinned from then on).
        "server_id": server.instance.id,
        "groups": server.groups,
        "user": DEFAULT_USER,
        "volumes": {
            purpose: {"id": data.volume.id, "device": data.attachment.device}
            for purpose, data in server.volumes.items()
        },
    }


def export_outputs(
    *,
    hosts: Mapping[str, Any],
    endpoints: Mapping[str, Any],
    credentials: Mapping[str, Any] | None = None,
) -> None:
    """Export the contract's outputs. `credentials` is always a secret, even when empty, so every
    stack has the same shape and nothing generated is ever shown in the clear."""
    pulumi.export("hosts", dict(hosts))
    pulumi.export("endpoints", dict(endpoints))
    pulumi.export("credentials", pulumi.Output.secret(dict(credentials or {})))
