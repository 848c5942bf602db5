"""The server an image is baked on (`orchestrator/images/builder.py`): one server booted from
the base image on its own routed network, behind the hardened group (SSH from the management
network only, no public port), at a floating IP. It lives for one build; destroying the stack
removes everything the build made.

It reads the same keys as an offering's program; `tonle:parameters.name` is the image role.
"""

from stacks.components.public_server import public_server
from stacks.config import StackConfig
from stacks.labels import Labels
from stacks.outputs import export_outputs


def program() -> None:
    config = StackConfig()
    labels = Labels.from_config(config)
    builder = public_server(config, labels, role="builder", groups=["image"], public_ports=[], volumes_gb={})
    export_outputs(hosts=builder.hosts(), endpoints={"public_address": builder.address})
