"""Network isolation in the local data centre, as an outsider sees it: devcloud enforces Neutron
security groups on its instances (devcloud/machines/secgroups.py) and keeps tenant networks apart
unless a router joins them, so the stacks' ingress guardrails hold on real servers, not only
under Pulumi mocks.

Two ministries' projects, made with the admin account as orchestrator/cloud/tenancy.py makes
them; in each, a network routed to `public`, a server behind the web-hosting stack's hardened
group (stacks/components/security.py: 80 and 443 from anywhere, SSH and ICMP from the
management network 172.24.4.0/24), a floating IP, and listeners on 80, 443 and an undeclared
8080. Ministry B's server runs in the `dr` zone, so both compute hosts' filters are exercised.

What is expected, and asserted:
- from the host (the orchestrator's place, in the management network): SSH and the declared
  ports answer at the floating IP; 8080 does not;
- from ministry A's server: B's private address answers on no port (no router joins the two
  networks); B's floating IP is B's public web: 80 and 443 answer, SSH and 8080 do not;
- a rule added to A's group opens 8080 within seconds; removing it closes it again;
- with port security disabled on B's port, 8080 answers at B's floating IP (nothing filters the
  port) while B's private address stays out of A's reach (routing, not filtering).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.conftest import DevCloud

pytestmark = [
    pytest.mark.cloud,
    pytest.mark.security,
    pytest.mark.skipif(os.geteuid() != 0, reason="devcloud machines need root"),
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client"),
    # The module's setup boots two servers (about 1 min on a quiet host, 3 under load).
    pytest.mark.timeout(600),
]

MANAGEMENT_CIDR = "172.24.4.0/24"  # orchestrator/config.py's default, as the stacks receive it
ANYWHERE = "0.0.0.0/0"
PUBLIC_PORTS = (80, 443)
UNDECLARED = 8080
LISTENERS = (*PUBLIC_PORTS, UNDECLARED)
#: Security group changes reach the filters through a poll of Neutron (every 2 s, at most one
#: per 3 s for the data dir); a filtered probe itself waits PROBE_TIMEOUT_S. Typically 1-5 s;
#: a clean CI run once measured 10.5 s, so the bound is generous but still "seconds".
RULE_CHANGE_LIMIT_S = 20.0
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Key:
    private: Path
    public: str


@dataclass
class Ministry:
    code: str
    conn: Any  # openstacksdk Connection scoped to the ministry's project
    group: Any = None
    server: Any = None
    port: Any = None
    fixed: str = ""
    floating: str = ""


@dataclass
class World:
    key: Key
    a: Ministry
    b: Ministry
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def ssh(key: Key, address: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key.private), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"debian@{address}", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def wait_for(what: str, check: Callable[[], bool], limit: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if check():
            return time.monotonic() - t0
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {limit:.0f}s")


def probe(address: str, port: int) -> str:
    """`open`, `refused` (a RST: reached, nothing listening) or `filtered` (no answer)."""
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT_S):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "filtered"


# Runs on ministry A's server: the same three answers, every target at once.
GUEST_PROBE = """
import json, socket, sys, concurrent.futures as cf
def probe(t):
    a, p = t
    try:
        socket.create_connection((a, p), timeout=TIMEOUT).close(); return "open"
    except ConnectionRefusedError: return "refused"
    except OSError: return "filtered"
targets = [(a, int(p)) for a, p in (x.split(":") for x in sys.argv[1:])]
with cf.ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps({f"{a}:{p}": r for (a, p), r in zip(targets, pool.map(probe, targets))}))
""".replace("TIMEOUT", str(PROBE_TIMEOUT_S))


def probe_from(key: Key, via: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    args = " ".join(f"{a}:{p}" for a, p in targets)
    proc = ssh(key, via, f"python3 -c '{GUEST_PROBE}' {args}", timeout=60)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def hardened_group(conn: Any, name: str) -> Any:
    """What stacks/components/security.py makes for web hosting."""
    group = conn.network.create_security_group(name=name, description="hardened (test)")
    rules = [("tcp", 22, MANAGEMENT_CIDR), ("icmp", None, MANAGEMENT_CIDR)]
    rules += [("tcp", port, ANYWHERE) for port in PUBLIC_PORTS]
    for protocol, port, source in rules:
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol=protocol,
            port_range_min=port, port_range_max=port, remote_ip_prefix=source,
        )  # fmt: skip
    return group


def build(world: World, m: Ministry, *, zone: str, image: Any, flavor: Any, external: Any) -> None:
    conn, tag = m.conn, f"iso-{m.code}"
    network = conn.network.create_network(name=tag)
    world.cleanups.append(lambda: conn.network.delete_network(network, ignore_missing=True))
    subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, use_default_subnet_pool=True, name=tag)
    router = conn.network.create_router(name=tag, external_gateway_info={"network_id": external.id})
    world.cleanups.append(lambda: conn.network.delete_router(router, ignore_missing=True))
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    world.cleanups.append(lambda: conn.network.remove_interface_from_router(router, subnet_id=subnet.id))
    m.group = hardened_group(conn, tag)
    world.cleanups.append(lambda: conn.network.delete_security_group(m.group, ignore_missing=True))
    keypair = conn.compute.create_keypair(name=tag, public_key=world.key.public)
    world.cleanups.append(lambda: conn.compute.delete_keypair(keypair, ignore_missing=True))
    server = conn.compute.create_server(
        name=tag, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": network.id}],
        key_name=keypair.name, security_groups=[{"name": m.group.name}], availability_zone=zone,
    )  # fmt: skip

    def delete_server() -> None:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)

    world.cleanups.append(delete_server)
    m.server = server


def finish(world: World, m: Ministry, external: Any) -> None:
    conn = m.conn
    m.server = conn.compute.wait_for_server(m.server, status="ACTIVE", wait=180)
    m.port = next(conn.network.ports(device_id=m.server.id))
    m.fixed = m.port.fixed_ips[0]["ip_address"]
    fip = conn.network.create_ip(floating_network_id=external.id, port_id=m.port.id)
    world.cleanups.append(lambda: conn.network.delete_ip(fip, ignore_missing=True))
    m.floating = fip.floating_ip_address
    wait_for(
        f"SSH to {m.code}'s server at {m.floating}", lambda: ssh(world.key, m.floating, "true").returncode == 0, 90
    )
    # Listeners as a service would run them; 8080 stands for anything the group does not declare.
    units = " ; ".join(
        f"sudo systemd-run --unit=listen-{p} --property=WorkingDirectory=/tmp python3 -m http.server {p}"
        for p in LISTENERS
    )
    assert ssh(world.key, m.floating, units).returncode == 0
    check = " && ".join(f"ss -ltn | grep -q ':{p} '" for p in LISTENERS)
    wait_for(f"listeners on {m.code}'s server", lambda: ssh(world.key, m.floating, check).returncode == 0, 30)


def as_member_of(site: Any, project_id: str) -> Any:
    """The site's user, scoped to the ministry's project (what the stacks' provider logs in as)."""
    import openstack

    auth = site.config.auth
    return openstack.connect(
        auth_url=auth["auth_url"], username=auth["username"], password=auth["password"],
        user_domain_name=auth.get("user_domain_name", "Default"), project_id=project_id,
        region_name=site.config.region_name,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(devcloud: DevCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    admin = devcloud.admin
    image = devcloud.primary.image.find_image("debian-12") or pytest.fail("image debian-12 missing: `up` uploads it")
    flavor = devcloud.primary.compute.find_flavor("m1.tiny")
    external = next(iter(devcloud.primary.network.networks(is_router_external=True)), None)
    if external is None:
        pytest.fail("devcloud has no external network for floating IPs")
    hypervisors = list(admin.compute.hypervisors(details=True))
    if not any(h.hypervisor_type == "nspawn" for h in hypervisors):
        pytest.skip("nova-compute runs the fake driver (no devcloud/machines): nothing to filter")
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    key = Key(path, path.with_suffix(".pub").read_text().strip())
    user = admin.identity.find_user(devcloud.primary.config.auth["username"], domain_id="default")
    member = admin.identity.find_role("member")
    suffix = uuid.uuid4().hex[:6]
    ministries: list[Ministry] = []
    projects = []
    cleanups: list[Callable[[], None]] = []
    try:
        for code in ("a", "b"):
            project = admin.identity.create_project(
                name=f"tonle-iso{code}-{suffix}", domain_id="default", description=f"isolation test ministry {code}"
            )
            projects.append(project)
            admin.identity.assign_project_role_to_user(project, user, member)
            ministries.append(Ministry(code=code, conn=as_member_of(devcloud.primary, project.id)))
        world = World(key=key, a=ministries[0], b=ministries[1], cleanups=cleanups)
        # Both servers boot at once; B in the other zone, on the other compute host.
        build(world, world.a, zone="primary", image=image, flavor=flavor, external=external)
        build(world, world.b, zone="dr", image=image, flavor=flavor, external=external)
        finish(world, world.a, external)
        finish(world, world.b, external)
        yield world
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - clean up the rest, report below
                print(f"cleanup failed: {exc}")
        for m in ministries:
            m.conn.close()
        for project in projects:
            admin.identity.delete_project(project, ignore_missing=True)


def test_from_the_management_network_only_declared_ports_answer(world: World) -> None:
    for m in (world.a, world.b):
        # SSH from the host is what Ansible uses: the host's source address is in the
        # management network, which the group lets in.
        assert ssh(world.key, m.floating, "true").returncode == 0
        seen = {port: probe(m.floating, port) for port in (*PUBLIC_PORTS, UNDECLARED)}
        assert seen == {80: "open", 443: "open", UNDECLARED: "filtered"}, m.code


def test_another_ministry_reaches_only_the_public_web(world: World) -> None:
    a, b = world.a, world.b
    private = [(b.fixed, p) for p in (22, *LISTENERS)]
    public = [(b.floating, p) for p in (22, *LISTENERS)]
    seen = probe_from(world.key, a.floating, private + public)
    expected = {f"{b.fixed}:{p}": "filtered" for p in (22, *LISTENERS)}
    expected |= {f"{b.floating}:80": "open", f"{b.floating}:443": "open"}
    expected |= {f"{b.floating}:22": "filtered", f"{b.floating}:{UNDECLARED}": "filtered"}
    assert seen == expected


def test_rule_changes_reach_the_filter_within_seconds(world: World) -> None:
    a = world.a
    rule = a.conn.network.create_security_group_rule(
        security_group_id=a.group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=UNDECLARED, port_range_max=UNDECLARED, remote_ip_prefix=MANAGEMENT_CIDR,
    )  # fmt: skip
    try:
        opened = wait_for("8080 open after adding a rule", lambda: probe(a.floating, UNDECLARED) == "open", 30)
    finally:
        a.conn.network.delete_security_group_rule(rule, ignore_missing=True)
    closed = wait_for("8080 closed after removing it", lambda: probe(a.floating, UNDECLARED) == "filtered", 30)
    print(f"rule added -> port open in {opened:.1f}s; removed -> closed in {closed:.1f}s")
    assert opened < RULE_CHANGE_LIMIT_S
    assert closed < RULE_CHANGE_LIMIT_S


def test_port_security_disabled_means_no_filter_but_networks_stay_apart(world: World) -> None:
    a, b = world.a, world.b
    b.conn.network.update_port(b.port, security_groups=[], port_security_enabled=False)
    try:
        wait_for("8080 open without port security", lambda: probe(b.floating, UNDECLARED) == "open", 30)
        seen = probe_from(world.key, a.floating, [(b.fixed, 22), (b.fixed, UNDECLARED)])
        assert set(seen.values()) == {"filtered"}, seen
    finally:
        b.conn.network.update_port(b.port, port_security_enabled=True, security_groups=[b.group.id])
    wait_for("8080 filtered again", lambda: probe(b.floating, UNDECLARED) == "filtered", 30)
