"""Admin resources every devcloud has; runs INSIDE the cloud venv (it has openstacksdk).

`python -m devcloud.services.bootstrap_cloud` with the admin's OS_* variables set, called by
devcloud/services/resources.py. Idempotent: finds before it creates.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import openstack

SITES = ("primary", "dr")
FLAVORS = (
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 1024, 10),
    ("m1.medium", 2, 2048, 20),
    # The catalogue's larger plans; instances here are not held to their flavor's size.
    ("m1.large", 4, 8192, 40),
    ("m1.xlarge", 8, 16384, 80),
)
#: Reachable from the host through devcloud/machines' plumbing; never routed off the host.
PUBLIC_CIDR = "172.24.4.0/24"
TENANT_POOL = "10.100.0.0/16"
BASE_IMAGE = "debian-12"


def log(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


#: The exit status of `--wait-for-computes` when a host did not report up in time: the caller
#: (resources.py) restarts the compute services and asks again.
COMPUTES_NOT_UP = 75


def wait_for_computes(conn: Any, hosts: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        up = {s.host for s in conn.compute.services(binary="nova-compute") if s.state == "up"}
        if set(hosts) <= up:
            return
        if time.monotonic() > deadline:
            log(f"compute hosts {sorted(set(hosts) - up)} did not report up in {timeout:.0f} s")
            sys.exit(COMPUTES_NOT_UP)
        time.sleep(1)


def ensure_aggregates(conn: Any) -> None:
    for site in SITES:
        host = f"{site}-compute1"
        agg = conn.compute.find_aggregate(site)
        if agg is None:
            agg = conn.compute.create_aggregate(name=site, availability_zone=site)
        if host not in (agg.hosts or []):
            conn.compute.add_host_to_aggregate(agg, host)


def ensure_flavors(conn: Any) -> None:
    for name, vcpus, ram, disk in FLAVORS:
        if conn.compute.find_flavor(name) is None:
            conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)


def ensure_networks(conn: Any) -> None:
    net = conn.network.find_network("public")
    if net is None:
        net = conn.network.create_network(
            name="public",
            is_router_external=True,
            is_shared=False,
            provider_network_type="flat",
            provider_physical_network="external",
        )
    if conn.network.find_subnet("public-subnet") is None:
        conn.network.create_subnet(
            name="public-subnet",
            network_id=net.id,
            ip_version=4,
            cidr=PUBLIC_CIDR,
            gateway_ip="172.24.4.1",
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}],
            is_dhcp_enabled=False,
        )
    if conn.network.find_subnet_pool("tenant-pool") is None:
        conn.network.create_subnet_pool(
            name="tenant-pool",
            prefixes=[TENANT_POOL],
            default_prefix_length=24,
            minimum_prefix_length=16,
            maximum_prefix_length=28,
            is_shared=True,
            is_default=True,
        )


def ensure_base_image(conn: Any, tar: str) -> None:
    """The Debian base image of devcloud/machines, public, once (name `debian-12`)."""
    if conn.image.find_image(BASE_IMAGE) is not None:
        return
    t0 = time.monotonic()
    conn.image.create_image(
        name=BASE_IMAGE,
        filename=tar,
        disk_format="raw",
        container_format="bare",
        visibility="public",
        wait=True,
    )
    log(f"uploaded {tar} as image {BASE_IMAGE} in {time.monotonic() - t0:.1f}s")


def main() -> None:
    conn = openstack.connect()  # from OS_* variables
    hosts = [f"{site}-compute1" for site in SITES]
    t0 = time.monotonic()
    wait_for_computes(conn, hosts)
    log(f"compute hosts up after {time.monotonic() - t0:.1f}s")
    if sys.argv[1:] == ["--wait-for-computes"]:
        return
    nova_manage = os.path.join(os.path.dirname(sys.executable), "nova-manage")
    subprocess.run(
        [
            nova_manage,
            "--config-file",
            os.environ["DEVCLOUD_NOVA_CONF"],
            "cell_v2",
            "discover_hosts",
        ],
        check=True,
    )
    ensure_aggregates(conn)
    ensure_flavors(conn)
    ensure_networks(conn)
    tar = os.environ.get("DEVCLOUD_BASE_IMAGE")
    if tar:
        ensure_base_image(conn, tar)
    log("done")


if __name__ == "__main__":
    main()
