"""Instances resolve with the data centre's DNS, as on a real cloud: a Neutron subnet's
`dns_nameservers` become the instance's /etc/resolv.conf (devcloud/machines), and BIND answers
them on the external network's gateway address, port 53 (devcloud/dns), authoritatively only.

A zone with A, MX and TXT record sets is made through Designate's API; then, from inside
instances:
- through Nova and Neutron (openstacksdk only): a server on a subnet with `dns_nameservers`
  resolves the A record with its own libc (`getent hosts`, over SSH) and the MX and TXT records
  by asking the nameserver its resolv.conf names (`dig` in its network namespace: the Debian
  image has no dig); a server on a subnet without them has no nameserver at all;
- through the machine layer alone (no OpenStack), the same for a machine given the nameserver.
A name outside the data centre's zones is refused: there is no recursion.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from devcloud.context import data_root
from devcloud.dns.layout import INSTANCE_ADDRESS
from devcloud.machines import net, prepare_host
from devcloud.machines.bench import free_lab_octet
from devcloud.machines.image import base_rootfs
from devcloud.machines.layout import Layout
from devcloud.machines.machine import Machine, MachineSpec
from tests.cloud.conftest import DevCloud, unavailable

pytestmark = [
    pytest.mark.cloud,
    pytest.mark.skipif(os.geteuid() != 0, reason="devcloud machines need root"),
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client"),
    pytest.mark.timeout(600),
]

# Fixed at import, as tests/cloud/conftest.py does (the database fixture moves TONLE_DATA_DIR).
DATA_DIR = data_root()
REPO = Path(__file__).resolve().parents[2]
WWW = "192.0.2.25"
MAIL = "192.0.2.26"
SPF = '"v=spf1 mx -all"'
PROPAGATION_S = 30.0


@dataclass(frozen=True)
class Key:
    private: Path
    public: str


@dataclass(frozen=True)
class Zone:
    name: str  # with the trailing dot


def wait_for(what: str, check: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit:.0f}s")
        time.sleep(0.5)


def ssh(key: Key, address: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key.private), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"debian@{address}", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def answers_ssh(key: Key, address: str) -> bool:
    return ssh(key, address, "true").returncode == 0


def nameservers(resolv_conf: str) -> list[str]:
    return [line.split()[1] for line in resolv_conf.splitlines() if line.startswith("nameserver ")]


def dig_in(netns: str, server: str, name: str, rtype: str) -> tuple[str, list[str]]:
    """(status, answers) for `name`/`rtype` asked of `server` from inside the namespace `netns`:
    the instance's own network path, its security groups' egress filter included."""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "dig", f"@{server}", "+time=2", "+tries=1", "+noall", "+comments",
         "+answer", name, rtype],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    status = next(
        (line.split("status:")[1].split(",")[0].strip() for line in out.splitlines() if "status:" in line), ""
    )
    records = [line.split(None, 4) for line in out.splitlines() if line and not line.startswith(";")]
    answers = [fields[4] for fields in records if len(fields) == 5 and fields[3] == rtype]
    return status or "TIMEOUT", sorted(answers)


def resolves_through(netns: str, resolv_conf: str, zone: Zone) -> None:
    """MX and TXT through the first nameserver of `resolv_conf`, from inside `netns`."""
    (server, *_) = nameservers(resolv_conf)
    assert server == INSTANCE_ADDRESS, resolv_conf
    assert dig_in(netns, server, zone.name, "MX") == ("NOERROR", [f"10 mail.{zone.name}"])
    assert dig_in(netns, server, zone.name, "TXT") == ("NOERROR", [SPF])
    assert dig_in(netns, server, f"www.{zone.name}", "A") == ("NOERROR", [WWW])
    # Authoritative only: a name of no zone here is refused, never looked up elsewhere.
    assert dig_in(netns, server, "example.org.", "A")[0] == "REFUSED"


@pytest.fixture(scope="module", autouse=True)
def dig(devcloud: DevCloud) -> None:
    """Looked for once the cloud is up, not at collection: on a fresh machine `devcloud up` is what
    installs it."""
    if shutil.which("dig") is None:
        unavailable("needs dig (bind9-dnsutils; `devcloud up` installs it)")


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return Key(path, path.with_suffix(".pub").read_text().strip())


@pytest.fixture(scope="module")
def zone(devcloud: DevCloud) -> Iterator[Zone]:
    """A ministry-like zone in Designate, already served by BIND (checked on loopback)."""
    conn = devcloud.primary
    try:
        conn.dns.get_endpoint()
    except Exception as exc:  # noqa: BLE001 - the sdk raises several kinds for "not in the catalog"
        pytest.skip(f"no `dns` service in the local data centre (DEVCLOUD_WITHOUT=dns?): {exc}")
    name = f"resolver-{uuid.uuid4().hex[:8]}.tonle-test.gov."
    created = conn.dns.create_zone(name=name, email=f"hostmaster@{name.rstrip('.')}", ttl=300)
    try:
        conn.dns.create_recordset(created, name=f"www.{name}", type="A", records=[WWW], ttl=60)
        conn.dns.create_recordset(created, name=f"mail.{name}", type="A", records=[MAIL], ttl=60)
        conn.dns.create_recordset(created, name=name, type="MX", records=[f"10 mail.{name}"], ttl=60)
        conn.dns.create_recordset(created, name=name, type="TXT", records=[SPF], ttl=60)
        loopback = ["dig", "@127.0.0.1", "-p", "15353", "+short", name, "TXT"]
        wait_for(
            "the zone in BIND",
            lambda: SPF in subprocess.run(loopback, capture_output=True, text=True, check=False).stdout,
            PROPAGATION_S,
        )
        yield Zone(name)
    finally:
        conn.dns.delete_zone(created, ignore_missing=True)


# --- through Nova and Neutron -----------------------------------------------------------------


@dataclass
class Server:
    server: Any
    fixed: str = ""

    @property
    def netns(self) -> str:
        return net.netns_name(self.server.id)

    @property
    def resolv_conf(self) -> Path:
        return DATA_DIR / "machines" / "instances" / self.server.id / "rootfs" / "etc" / "resolv.conf"


def _compute_older_than_machine_layer() -> str | None:
    """nova-compute loads devcloud/machines once: one started before this code changed runs the
    old driver (a fresh `devcloud up` starts it anew)."""
    pid_file = DATA_DIR / "run" / "nova-compute-primary.pid"
    code = [REPO / "devcloud" / "machines" / f for f in ("machine.py", "net.py", "nova_driver.py")]
    if pid_file.exists() and pid_file.stat().st_mtime < max(p.stat().st_mtime for p in code):
        return "nova-compute-primary started before devcloud/machines changed; restart it (`devcloud down`, `up`)"
    return None


@pytest.fixture(scope="module")
def servers(devcloud: DevCloud, key: Key) -> Iterator[tuple[Server, Server]]:
    """Two servers of the `tonle` project: one on a subnet naming the data centre's resolver,
    one on a subnet naming none. The first has a floating IP, as every service has (the host
    takes the resolver's address with the first one)."""
    hypervisors = list(devcloud.admin.compute.hypervisors(details=True))
    if not any(h.hypervisor_type == "nspawn" for h in hypervisors):
        pytest.skip("nova-compute runs the fake driver (no devcloud/machines): no instances to look into")
    stale = _compute_older_than_machine_layer()
    if stale:
        pytest.skip(stale)
    conn = devcloud.primary
    image = conn.image.find_image("debian-12") or pytest.fail("image debian-12 missing: `up` uploads it")
    flavor = conn.compute.find_flavor("m1.tiny")
    external = next(iter(conn.network.networks(is_router_external=True)))
    tag = f"resolver-{uuid.uuid4().hex[:6]}"
    cleanups: list[Callable[[], None]] = []
    try:
        group = conn.network.create_security_group(name=tag, description="resolver test: SSH from the host")
        cleanups.append(lambda: conn.network.delete_security_group(group, ignore_missing=True))
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0",
        )  # fmt: skip
        keypair = conn.compute.create_keypair(name=tag, public_key=key.public)
        cleanups.append(lambda: conn.compute.delete_keypair(keypair, ignore_missing=True))
        booted = []
        for suffix, resolvers in (("dns", [INSTANCE_ADDRESS]), ("none", [])):
            network = conn.network.create_network(name=f"{tag}-{suffix}")
            cleanups.append(partial(conn.network.delete_network, network, ignore_missing=True))
            subnet = conn.network.create_subnet(
                network_id=network.id, ip_version=4, use_default_subnet_pool=True, name=f"{tag}-{suffix}",
                dns_nameservers=resolvers,
            )  # fmt: skip
            assert subnet.dns_nameservers == resolvers
            if resolvers:
                router = conn.network.create_router(name=tag, external_gateway_info={"network_id": external.id})
                cleanups.append(partial(conn.network.delete_router, router, ignore_missing=True))
                conn.network.add_interface_to_router(router, subnet_id=subnet.id)
                cleanups.append(partial(conn.network.remove_interface_from_router, router, subnet_id=subnet.id))
            server = conn.compute.create_server(
                name=f"{tag}-{suffix}", image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": network.id}],
                key_name=keypair.name, security_groups=[{"name": group.name}],
            )  # fmt: skip

            def delete(server: Any = server) -> None:
                conn.compute.delete_server(server, ignore_missing=True)
                conn.compute.wait_for_delete(server, wait=120)

            cleanups.append(delete)
            booted.append(Server(server))
        for s in booted:
            s.server = conn.compute.wait_for_server(s.server, status="ACTIVE", wait=180)
            port = next(conn.network.ports(device_id=s.server.id))
            s.fixed = port.fixed_ips[0]["ip_address"]
            if s is booted[0]:
                fip = conn.network.create_ip(floating_network_id=external.id, port_id=port.id)
                cleanups.append(partial(conn.network.delete_ip, fip, ignore_missing=True))
        for s in booted:
            wait_for(f"SSH to {s.fixed}", partial(answers_ssh, key, s.fixed), 90)
        yield booted[0], booted[1]
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - clean up the rest
                print(f"cleanup failed: {exc}")


def test_a_server_resolves_the_zones_through_its_subnets_nameserver(
    servers: tuple[Server, Server], zone: Zone, key: Key
) -> None:
    with_dns, _ = servers
    resolv = ssh(key, with_dns.fixed, "cat /etc/resolv.conf")
    assert resolv.returncode == 0, resolv.stderr
    assert nameservers(resolv.stdout) == [INSTANCE_ADDRESS]
    # The guest's own libc, through its resolv.conf: what Postfix and rspamd would do.
    getent = ssh(key, with_dns.fixed, f"getent hosts www.{zone.name} mail.{zone.name}")
    assert getent.returncode == 0, getent.stderr
    assert sorted(line.split()[0] for line in getent.stdout.splitlines()) == [WWW, MAIL]
    resolves_through(with_dns.netns, resolv.stdout, zone)


def test_a_server_on_a_subnet_without_nameservers_has_none(
    servers: tuple[Server, Server], zone: Zone, key: Key
) -> None:
    _, without = servers
    resolv = ssh(key, without.fixed, "cat /etc/resolv.conf")
    assert resolv.returncode == 0, resolv.stderr
    assert nameservers(resolv.stdout) == []
    assert ssh(key, without.fixed, f"getent hosts www.{zone.name}").returncode != 0


# --- through the machine layer alone ------------------------------------------------------------


def test_a_machine_given_a_nameserver_resolves_the_zones(devcloud: DevCloud, zone: Zone, key: Key) -> None:
    layout = Layout(DATA_DIR)
    prepare_host(DATA_DIR)
    # The host takes the external gateway address with the first floating IP (machines/floating.py);
    # a machine without Nova gets none, so take it as that would.
    external = next(iter(devcloud.admin.network.networks(is_router_external=True)))
    gateways = [net.Subnet(s.cidr, s.gateway_ip) for s in devcloud.admin.network.subnets(network_id=external.id)]
    assert any(s.gateway == INSTANCE_ADDRESS for s in gateways), gateways
    net.ensure_bridge(layout, net.bridge_name(external.id), gateways)
    third = free_lab_octet()
    prefix = f"198.18.{third}."
    nic = net.Nic(
        port_id=uuid.uuid4().hex,
        mac=f"fa:16:3e:{os.urandom(1).hex()}:{os.urandom(1).hex()}:0a",
        network_id=f"test{uuid.uuid4().hex}",
        subnets=(net.Subnet(f"{prefix}0/24", f"{prefix}1", (f"{prefix}10",), dns=(INSTANCE_ADDRESS,)),),
    )
    m = Machine(layout, f"test-{uuid.uuid4()}")
    try:
        m.create(
            MachineSpec(
                name=m.name, hostname=f"res-{m.name[5:13]}", nics=[nic], lower=base_rootfs(DATA_DIR),
                authorized_keys=key.public,
            )
        )  # fmt: skip
        m.start()
        wait_for("SSH to the machine", lambda: ssh(key, f"{prefix}10", "true").returncode == 0, 60)
        resolv = ssh(key, f"{prefix}10", "cat /etc/resolv.conf")
        assert nameservers(resolv.stdout) == [INSTANCE_ADDRESS]
        getent = ssh(key, f"{prefix}10", f"getent hosts mail.{zone.name}")
        assert getent.stdout.split()[:1] == [MAIL], getent.stderr
        resolves_through(m.netns, resolv.stdout, zone)
    finally:
        m.destroy()


# --- the embedded engine's subnet -----------------------------------------------------------------


def test_the_embedded_engines_subnet_sets_changes_and_clears_nameservers_in_place(devcloud: DevCloud) -> None:
    from pulumi_embedded.openstack.resources.networking import Subnet as SubnetHandler
    from pulumi_embedded.openstack.schema import FORCE_NEW

    # An in-place update, as in the provider: a new resolver never rebuilds a ministry's network.
    assert "dnsNameservers" not in FORCE_NEW[SubnetHandler.type_]
    conn = devcloud.primary
    handler = SubnetHandler()
    network = conn.network.create_network(name=f"resolver-engine-{uuid.uuid4().hex[:6]}")
    try:
        pool = conn.network.find_subnet_pool("tenant-pool") or pytest.fail("devcloud has no tenant-pool")
        inputs = {"name": network.name, "networkId": network.id, "subnetpoolId": pool.id, "ipVersion": 4}
        first = {**inputs, "dnsNameservers": [INSTANCE_ADDRESS]}
        created = handler.create(conn, first)
        assert conn.network.get_subnet(created.id).dns_nameservers == [INSTANCE_ADDRESS]
        second = {**inputs, "dnsNameservers": [INSTANCE_ADDRESS, "192.0.2.53"]}
        handler.update(conn, created.id, created.outputs, second)
        assert conn.network.get_subnet(created.id).dns_nameservers == [INSTANCE_ADDRESS, "192.0.2.53"]
        # The program stops naming them: none, not the old ones left behind.
        handler.update(conn, created.id, second, dict(inputs))
        assert conn.network.get_subnet(created.id).dns_nameservers == []
    finally:
        for subnet in conn.network.subnets(network_id=network.id):
            conn.network.delete_subnet(subnet, ignore_missing=True)
        conn.network.delete_network(network, ignore_missing=True)
