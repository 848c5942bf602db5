"""The orchestrator's `TONLE_*` settings for building on this data centre, besides clouds.yaml
(which it finds on its own): `python -m devcloud env` prints them for `tonle run`, and the cloud
tests and benchmarks merge them into the environment of the API and worker they start."""

from __future__ import annotations

from pathlib import Path

from devcloud import parts


def orchestrator_env(devcloud_dir: Path | None = None) -> dict[str, str]:
    """Setting name -> value; none of a part's when that part is left out. `devcloud_dir`: the
    cloud's data folder when it is not `${TONLE_DATA_DIR}/devcloud` as of now."""
    return {**_dns_env(), **_dcim_env(devcloud_dir)}


def _dcim_env(devcloud_dir: Path | None) -> dict[str, str]:
    if parts.optional("devcloud.dcim") is None:
        return {}
    from devcloud.context import data_root

    # devcloud.dcim's layout puts it there; it appears once Nautobot is seeded (in the
    # background), and the orchestrator reads it when it first needs the DCIM.
    return {"TONLE_DCIM_CONFIG": str((devcloud_dir or data_root()) / "dcim.json")}


def _dns_env() -> dict[str, str]:
    if parts.optional("devcloud.dns") is None:
        return {}
    from devcloud.dns import layout as dns

    return {
        # What tenant subnets hand their servers: BIND where instances reach it.
        "TONLE_DNS_RESOLVERS": dns.INSTANCE_ADDRESS,
        # What the orchestrator itself queries (health checks, DNS drift): BIND on loopback.
        "TONLE_DNS_SERVER": f"{dns.HOST}:{dns.BIND_PORT}",
    }
