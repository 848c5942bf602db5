"""ML2 mechanism driver `tonle_bridge`: binds every port as a tap VIF on a Linux bridge, no agent.

Runs inside neutron-server (the cloud venv), registered by devcloud/services/venv.py under
the entry point `neutron.ml2.mechanism_drivers: tonle_bridge`. There is no L2 agent: the
Nova virt driver of devcloud/machines creates the bridge (`bridge_name` below) and plugs the
instance in, so the binding is final at once and the port is reported ACTIVE.
The VIF type is `tap`, not `bridge`: Nova 34 refuses Linux-bridge VIFs outright.
Security groups are enforced by the compute side (devcloud/machines/secgroups.py, polling Neutron),
hence `port_filter: True`: nothing else needs to filter these ports.
"""

from __future__ import annotations

from typing import Any

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api

#: Linux caps interface names at 15 characters (IFNAMSIZ - 1).
IFNAME_MAX = 15
BRIDGE_PREFIX = "brq"


def bridge_name(network_id: str) -> str:
    """`brq` + the network id's first 11 characters (14 in all), as Nova names Linux bridges."""
    return (BRIDGE_PREFIX + network_id)[: IFNAME_MAX - 1]


class TonleBridgeMechanismDriver(api.MechanismDriver):  # type: ignore[misc,unused-ignore]
    def initialize(self) -> None:
        pass

    @property
    def connectivity(self) -> str:
        return str(portbindings.CONNECTIVITY_L2)

    def bind_port(self, context: Any) -> None:
        if context.current.get(portbindings.VNIC_TYPE, portbindings.VNIC_NORMAL) != portbindings.VNIC_NORMAL:
            return
        network_id = context.network.current["id"]
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_TAP,
                {
                    portbindings.CAP_PORT_FILTER: True,
                    portbindings.VIF_DETAILS_BRIDGE_NAME: bridge_name(network_id),
                    portbindings.VIF_DETAILS_CONNECTIVITY: self.connectivity,
                },
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
