"""A public web site: a web server behind the hardened group with HTTP and HTTPS open, and A
records for its domain and aliases. Web hosting and the CMS are this, with other volumes."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stacks.components.dns import address_records
from stacks.components.public_server import PublicServer, public_server
from stacks.components.security import WEB_PORTS
from stacks.config import StackConfig
from stacks.labels import Labels


@dataclass(frozen=True)
class Website:
    domain: str
    dns_names: list[str]
    server: PublicServer

    @property
    def url(self) -> str:
        return f"https://{self.domain}/"


def website(config: StackConfig, labels: Labels, *, groups: Sequence[str], volumes_gb: Mapping[str, int]) -> Website:
    """Reads the `domain`, `admin_email` and optional `aliases` parameters."""
    domain = str(config.parameter("domain"))
    server = public_server(config, labels, role="web", groups=groups, public_ports=WEB_PORTS, volumes_gb=volumes_gb)
    if config.copy is not None:
        # A copy at the DR site publishes nothing: a drill is reached by address with the name as
        # SNI, and a failover's names are the production records, repointed by the orchestrator.
        names = [domain, *(str(alias) for alias in config.parameters.get("aliases", []) if alias != domain)]
        return Website(domain=domain, dns_names=names, server=server)
    names = address_records(
        labels,
        domain=domain,
        email=str(config.parameter("admin_email")),
        names=[str(alias) for alias in config.parameters.get("aliases", [])],
        address=server.address,
    )
    return Website(domain=domain, dns_names=names, server=server)
