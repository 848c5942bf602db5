"""S3 for the instances: Swift listens on 127.0.0.1 only, which instances cannot reach, so a
socat relay (Debian's) takes their connections on the host and hands them to the proxy.

Instances reach it at the external network's gateway address, which the host holds once a
floating IP exists (every service that backs up has one). The relay listens on every address
of the host, because that address appears only later, but serves only the tenant subnet pool:
socat closes any other connection at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devcloud import ports
from devcloud.services.common import wait_for_port

if TYPE_CHECKING:
    from devcloud.context import Context

PROCESS = "s3-gateway"
#: Where instances find S3: the external subnet's gateway address, held by the host.
INSTANCE_ENDPOINT = f"http://172.24.4.1:{ports.S3_GATEWAY}"
#: The tenant subnet pool (services/bootstrap_cloud.py): instances' source addresses.
CLIENTS = "10.100.0.0/16"


def start(ctx: Context) -> None:
    argv = [
        "socat",
        f"TCP-LISTEN:{ports.S3_GATEWAY},fork,reuseaddr,range={CLIENTS}",
        f"TCP:127.0.0.1:{ports.SWIFT_PROXY}",
    ]
    ctx.start_process(PROCESS, argv)
    wait_for_port(ctx, PROCESS, ports.S3_GATEWAY, timeout=30)
