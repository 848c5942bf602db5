"""Where the DNS part keeps its files, which ports it uses, and the names of its processes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud import ports

if TYPE_CHECKING:
    from devcloud.context import Context

HOST = "127.0.0.1"
API_PORT = ports.DESIGNATE
MDNS_PORT = ports.DESIGNATE_MDNS
BIND_PORT = ports.BIND_DNS
RNDC_PORT = ports.BIND_RNDC
#: Where instances reach BIND, as a cloud's instances reach its resolver: the external subnet's
#: gateway (services/bootstrap_cloud.py), an address of the host every tenant network routes to
#: (the S3 relay's too), on DNS's own port. Tenant subnets name it in `dns_nameservers`.
INSTANCE_ADDRESS = "172.24.4.1"
INSTANCE_PORT = ports.INSTANCE_DNS

#: Designate's database and its own MariaDB user (least privilege: only this database).
DB_NAME = "designate"
DB_USER = "designate"
DB_PASSWORD = "devcloud-designate-db"

#: Keystone service user that keystonemiddleware in the API validates tokens with.
SERVICE_USER = "designate"
SERVICE_PASSWORD = "devcloud-designate"

#: The NS record every zone gets; a name, not a host anyone resolves (there is no recursion).
NS_HOSTNAME = "ns1.devcloud.tonle.test."

#: Designate's built-in id of the default pool; zones are scheduled there.
POOL_ID = "794ccc2c-d751-44fe-b57f-8894c9f5c842"

#: Process names as given to `ctx.start_process`: logs are `logs/<name>.log`.
NAMED = "dns-named"
CENTRAL = "dns-central"
WORKER = "dns-worker"
MDNS = "dns-mdns"
PRODUCER = "dns-producer"
API = "dns-api"
#: In start order; `down` stops them in reverse.
PROCESSES: tuple[str, ...] = (NAMED, CENTRAL, WORKER, MDNS, PRODUCER, API)


@dataclass(frozen=True)
class Layout:
    """All paths of the DNS part, under the cloud's data directory."""

    data_dir: Path
    etc_root: Path
    state_root: Path

    @classmethod
    def of(cls, ctx: Context) -> Layout:
        return cls(data_dir=ctx.data_dir, etc_root=ctx.etc_dir, state_root=ctx.state_dir)

    # Designate's venv, separate from the cloud venv (`<data>/venv`).
    @property
    def venv(self) -> Path:
        return self.data_dir / "dns-venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def venv_bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    # Designate
    @property
    def designate_etc(self) -> Path:
        return self.etc_root / "designate"

    @property
    def designate_conf(self) -> Path:
        return self.designate_etc / "designate.conf"

    @property
    def pools_yaml(self) -> Path:
        return self.designate_etc / "pools.yaml"

    @property
    def designate_state(self) -> Path:
        return self.state_root / "designate"

    # BIND
    @property
    def bind_etc(self) -> Path:
        return self.etc_root / "bind"

    @property
    def named_conf(self) -> Path:
        return self.bind_etc / "named.conf"

    @property
    def rndc_key(self) -> Path:
        return self.bind_etc / "rndc.key"

    @property
    def rndc_conf(self) -> Path:
        return self.bind_etc / "rndc.conf"

    @property
    def bind_state(self) -> Path:
        """named's working directory: secondary zone files and the new-zones database."""
        return self.state_root / "bind"
