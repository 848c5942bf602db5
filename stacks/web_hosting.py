"""Web hosting: one nginx + PHP-FPM server with a data volume, a public address and DNS names."""

from stacks.components.dns import address_records
from stacks.components.public_server import public_server
from stacks.components.security import WEB_PORTS
from stacks.config import StackConfig
from stacks.labels import Labels
from stacks.outputs import export_outputs


def program() -> None:
    config = StackConfig()
    labels = Labels.from_config(config)
    domain = str(config.parameter("domain"))
    site = public_server(
        config,
        labels,
        role="web",
        groups=["web"],
        public_ports=WEB_PORTS,
        volumes_gb={"data": config.sizes.number("volume_gb")},
    )
    names = address_records(
        labels,
        domain=domain,
        email=str(config.parameter("admin_email")),
        names=[str(alias) for alias in config.parameters.get("aliases", [])],
        address=site.address,
    )
    export_outputs(
        hosts=site.hosts(),
        endpoints={"url": f"https://{domain}/", "public_address": site.address, "dns_names": names},
    )
