"""Web hosting: one nginx + PHP-FPM server with a data volume, a public address and DNS names."""

from stacks.components.website import website
from stacks.config import StackConfig
from stacks.labels import Labels
from stacks.outputs import export_outputs


def program() -> None:
    config = StackConfig()
    labels = Labels.from_config(config)
    site = website(config, labels, groups=["web"], volumes_gb={"data": config.sizes.number("volume_gb")})
    export_outputs(
        hosts=site.server.hosts(),
        endpoints={"url": site.url, "public_address": site.server.address, "dns_names": site.dns_names},
    )
