"""devcloud's real instances, as an outside client sees them.

(At the end, a few `unit` tests of the pure parts: user data handling, host mirror lookup.)

Part 1 drives the machine layer directly (no OpenStack): boot a machine, SSH in as `debian`
with a generated key, check user data took effect, reboot, stop/start, delete, and find no
process, veth, namespace or mount left. Part 2 goes through openstacksdk only, against the
running devcloud: a server on a new network with a keypair and user data, SSH, reboot, a
floating IP, delete.

Needs root (nspawn, bridges, nftables): it skips with that message otherwise. The first run
builds the Debian base image (about 90 s); later runs reuse it. The machine tests use
addresses from 198.18.0.0/15 (RFC 2544's benchmarking range) on bridges of their own.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devcloud.context import data_root
from devcloud.machines import net, prepare_host
from devcloud.machines.bench import free_lab_octet
from devcloud.machines.image import base_rootfs
from devcloud.machines.layout import Layout
from devcloud.machines.machine import Machine, MachineSpec


def cloud(test: Any) -> Any:
    """The cloud tier: real machines, so root and an ssh client."""
    for mark in (
        pytest.mark.cloud,
        pytest.mark.skipif(os.geteuid() != 0, reason="devcloud machines need root (nspawn, bridges, nftables)"),
        pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client (apt-get install openssh-client)"),
    ):
        test = mark(test)
    return test


SSH_READY_S = 60.0
# Where the Nova test boots: the primary site by default. To aim at one compute host, e.g.
# TONLE_TEST_CLOUD=tonle-admin TONLE_TEST_AZ=nova:<host> (forcing a host needs admin).
CLOUD = os.environ.get("TONLE_TEST_CLOUD", "tonle-primary")  # or tonle-admin
AZ = os.environ.get("TONLE_TEST_AZ")


@dataclass(frozen=True)
class Key:
    private: Path
    public: str


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return Key(path, path.with_suffix(".pub").read_text().strip())


def ssh(
    key: Key, address: str, command: str, user: str = "debian", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key.private), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR", f"{user}@{address}", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def wait_ssh(key: Key, address: str, user: str = "debian", limit: float = SSH_READY_S) -> float:
    """Seconds until `ssh user@address true` succeeds; fails the test after `limit`."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < limit:
        proc = ssh(key, address, "true", user=user, timeout=10)
        if proc.returncode == 0:
            return time.monotonic() - t0
        last = proc.stderr.strip()
        time.sleep(0.2)
    pytest.fail(f"no SSH to {user}@{address} within {limit:.0f}s: {last}")


def wait_for(what: str, check: Any, limit: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out after {limit:.0f}s waiting for {what}")


# --- part 1: the machine layer --------------------------------------------------------------


# Fixed at import, as tests/cloud/conftest.py does: the database fixture points
# TONLE_DATA_DIR at a temporary folder later in the session.
DATA_DIR = data_root()


@pytest.fixture(scope="module")
def layout() -> Layout:
    prepare_host(DATA_DIR)
    return Layout(DATA_DIR)


@dataclass
class Lab:
    layout: Layout
    network_id: str
    cidr_prefix: str  # "198.18.N."
    machines: list[Machine]

    def nic(self, host_octet: int) -> net.Nic:
        ip = f"{self.cidr_prefix}{host_octet}"
        return net.Nic(
            port_id=uuid.uuid4().hex,
            mac=f"fa:16:3e:{os.urandom(1).hex()}:{os.urandom(1).hex()}:{host_octet:02x}",
            network_id=self.network_id,
            subnets=(net.Subnet(f"{self.cidr_prefix}0/24", f"{self.cidr_prefix}1", (ip,)),),
        )

    def boot(self, host_octet: int, key: Key, user_data: bytes | None = None) -> tuple[Machine, str]:
        m = Machine(self.layout, f"test-{uuid.uuid4()}")
        self.machines.append(m)
        nic = self.nic(host_octet)
        m.create(
            MachineSpec(
                name=m.name,
                hostname=f"t{host_octet}-{m.name[5:13]}",
                nics=[nic],
                lower=base_rootfs(self.layout.data_dir),
                authorized_keys=key.public,
                user_data=user_data,
            )
        )
        m.start()
        return m, nic.subnets[0].fixed_ips[0]


@pytest.fixture
def lab(layout: Layout) -> Iterator[Lab]:
    third = free_lab_octet()
    lab = Lab(layout, f"test{uuid.uuid4().hex}", f"198.18.{third}.", [])
    yield lab
    for m in lab.machines:
        m.destroy()


USER_DATA = b"""#cloud-config
users:
  - default
  - name: ops
    groups: sudo
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - %(key)s
write_files:
  - path: /etc/tonle/hello.txt
    content: |
      written by cloud-config
    permissions: '0640'
runcmd:
  - [sh, -c, "hostname > /var/tmp/runcmd-hostname"]
  - echo done > /var/tmp/runcmd-done
"""


def leftovers(m: Machine, nic_taps: list[str]) -> list[str]:
    found = []
    if m.dir.exists():
        found.append(f"directory {m.dir}")
    if Path("/run/netns", m.netns).exists():
        found.append(f"netns {m.netns}")
    for tap in nic_taps:
        if subprocess.run(["ip", "link", "show", tap], capture_output=True, check=False).returncode == 0:
            found.append(f"veth {tap}")
    procs = subprocess.run(["pgrep", "-f", m.name], capture_output=True, text=True, check=False).stdout.split()
    if procs:
        found.append(f"processes {procs}")
    if m.name in Path("/proc/mounts").read_text():
        found.append("overlay mount")
    return found


@cloud
def test_machine_boots_with_key_user_data_and_survives_its_lifecycle(lab: Lab, key: Key) -> None:
    t0 = time.monotonic()
    m, ip = lab.boot(10, key, USER_DATA % {b"key": key.public.encode()})
    ready = wait_ssh(key, ip)
    print(f"boot to SSH-ready: {time.monotonic() - t0:.2f}s (ssh {ready:.2f}s after start returned)")

    out = ssh(key, ip, "hostname; sudo -n id -u; sudo cat /etc/tonle/hello.txt; stat -c %a /etc/tonle/hello.txt")
    assert out.returncode == 0, out.stderr
    hostname, uid, hello, mode = out.stdout.splitlines()
    assert hostname.startswith("t10-")
    assert uid == "0"  # passwordless sudo for the default user
    assert hello == "written by cloud-config"
    assert mode == "640"
    assert hostname in ssh(key, ip, "cat /etc/hosts").stdout

    # runcmd runs after sshd is up: wait for it, as cloud-init users do.
    wait_for("runcmd", lambda: ssh(key, ip, "cat /var/tmp/runcmd-done").stdout.strip() == "done")
    assert ssh(key, ip, "cat /var/tmp/runcmd-hostname").stdout.strip() == hostname
    # The extra user from `users:` logs in with its own key and has sudo.
    assert ssh(key, ip, "sudo -n true && id -nG", user="ops").stdout.split().count("sudo") == 1
    assert "Acquire::http::Proxy" in ssh(key, ip, "cat /etc/apt/apt.conf.d/01devcloud-proxy").stdout
    assert b"tonle-init: final phase done" in m.console()

    # Soft reboot: /run is a fresh tmpfs per boot; the disk (upper layer) persists.
    assert ssh(key, ip, "sudo touch /run/booted-before && echo kept > /home/debian/persist").returncode == 0
    m.reboot()
    wait_ssh(key, ip)
    assert ssh(key, ip, "test -e /run/booted-before").returncode == 1
    assert ssh(key, ip, "cat /home/debian/persist").stdout.strip() == "kept"
    assert b"nspawn exited 133" in m.console()

    m.reboot(hard=True)
    wait_ssh(key, ip)

    m.stop()
    assert m.power() == "shutdown"
    assert ssh(key, ip, "true", timeout=10).returncode != 0
    m.start()
    assert m.power() == "running"
    wait_ssh(key, ip)
    assert ssh(key, ip, "cat /home/debian/persist").stdout.strip() == "kept"
    # User data ran once: its markers survive, it does not run again on the next boot.
    assert m.console().count(b"tonle-init: final phase done") == 1

    taps = [n.tap for n in m.nics()]
    m.destroy()
    assert m.power() == "missing"
    assert leftovers(m, taps) == []


@cloud
def test_machines_on_one_network_reach_each_other_and_a_floating_ip(lab: Lab, key: Key) -> None:
    t0 = time.monotonic()
    (_a, ip_a), (_b, ip_b) = lab.boot(21, key), lab.boot(22, key)
    wait_ssh(key, ip_a)
    wait_ssh(key, ip_b)
    print(f"two machines SSH-ready in {time.monotonic() - t0:.2f}s")
    assert ssh(key, ip_a, f"ping -c1 -W2 {ip_b}").returncode == 0
    assert ssh(key, ip_b, f"ping -c1 -W2 {ip_a}").returncode == 0

    floating_ip = f"198.19.{lab.cidr_prefix.split('.')[2]}.50"
    ext = net.bridge_name(f"ext{lab.network_id}")
    net.ensure_bridge(
        lab.layout, ext, [net.Subnet(floating_ip.rsplit(".", 1)[0] + ".0/24", floating_ip.rsplit(".", 1)[0] + ".1")]
    )
    owner = f"test-{lab.network_id[4:12]}"  # beside the Nova driver's own entries
    try:
        net.sync_floating_ips(lab.layout, {floating_ip: ip_b}, owner)
        wait_ssh(key, floating_ip, limit=15)
        assert ssh(key, floating_ip, "hostname").stdout.strip().startswith("t22-")
        # From the neighbour on the same network too (hairpin through the host).
        assert ssh(key, ip_a, f"ping -c1 -W2 {floating_ip}").returncode == 0
        net.sync_floating_ips(lab.layout, {}, owner)
        assert floating_ip not in net.floating_ips()
        assert ssh(key, floating_ip, "true", timeout=10).returncode != 0
    finally:
        net.sync_floating_ips(lab.layout, {}, owner)
        (lab.layout.root / f"floating-{owner}.json").unlink(missing_ok=True)
        subprocess.run(["ip", "link", "del", ext], check=False)


# --- part 2: through Nova, with openstacksdk only ---------------------------------------------


@pytest.fixture(scope="module")
def conn(devcloud: Any) -> Any:
    """The primary site as the `tonle` member user (or the admin, to force a host with AZ)."""
    c = devcloud.admin if AZ else (devcloud.admin if CLOUD == "tonle-admin" else devcloud.primary)
    types = {h.name: h.hypervisor_type for h in devcloud.admin.compute.hypervisors(details=True)}
    wanted = AZ.split(":", 1)[1] if AZ and ":" in AZ else "primary-compute1"
    if types.get(wanted) != "nspawn":
        pytest.skip(
            f"compute host {wanted} runs hypervisor type {types.get(wanted)!r}, not devcloud's nspawn driver "
            "(is devcloud.machines wired into `python -m devcloud up`? see devcloud/machines/README.md)"
        )
    return c


def settle(conn: Any, server: Any, status: str, limit: float = 120) -> None:
    """Wait until the server has `status` and no task: a reboot keeps ACTIVE throughout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        s = conn.compute.get_server(server.id)
        if s.status == "ERROR":
            pytest.fail(f"server {server.id} went to ERROR: {s.fault}")
        if s.status == status and s.task_state is None:
            return
        time.sleep(0.3)
    pytest.fail(f"server {server.id} not {status} within {limit:.0f}s")


def _image(conn: Any) -> Any:
    images = [i for i in conn.image.images() if i.status == "active" and i.container_format == "bare"]
    named = [i for i in images if "debian" in (i.name or "").lower()]
    if not named:
        pytest.skip("no active Debian image in Glance yet (devcloud uploads devcloud.machines.base_image_tar)")
    return named[0]


@cloud
def test_server_through_nova_with_key_user_data_volume_reboot_floating_ip_and_delete(conn: Any, key: Key) -> None:
    image = _image(conn)
    flavor = min(conn.compute.flavors(), key=lambda f: (f.ram, f.vcpus))
    tag = uuid.uuid4().hex[:8]
    created: list[tuple[str, Any]] = []
    try:
        network = conn.network.create_network(name=f"test-machines-{tag}")
        created.append(("network", network))
        pools = [p for p in conn.network.subnet_pools() if p.is_default or p.is_shared]
        subnet_args: dict[str, Any] = (
            {"subnetpool_id": pools[0].id, "prefixlen": 26} if pools else {"cidr": "198.18.250.0/24"}
        )
        subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, name=f"test-{tag}", **subnet_args)
        keypair = conn.compute.create_keypair(name=f"test-machines-{tag}", public_key=key.public)
        created.append(("keypair", keypair))
        # devcloud enforces security groups: the default group lets nothing in from the host.
        group = conn.network.create_security_group(name=f"test-machines-{tag}")
        created.append(("security_group", group))
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0",
        )  # fmt: skip
        user_data = b"#cloud-config\nruncmd:\n  - echo via-nova > /var/tmp/nova-user-data\n"

        t0 = time.monotonic()
        server = conn.compute.create_server(
            name=f"test-machines-{tag}",
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": network.id}],
            key_name=keypair.name,
            security_groups=[{"name": group.name}],
            user_data=base64.b64encode(user_data).decode(),
            **({"availability_zone": AZ} if AZ else {}),
        )
        created.append(("server", server))
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120)
        fixed = next(a["addr"] for addrs in server.addresses.values() for a in addrs if a["version"] == 4)
        wait_ssh(key, fixed)
        print(f"Nova server SSH-ready in {time.monotonic() - t0:.2f}s")
        wait_for("user data", lambda: ssh(key, fixed, "cat /var/tmp/nova-user-data").stdout.strip() == "via-nova")
        console = conn.compute.get_server_console_output(server)["output"]
        assert "tonle-init" in console

        # A volume attaches and detaches through Nova (Cinder's backend is a fake: nothing
        # appears in the guest, the driver records the attachment).
        placed = conn.compute.get_server(server.id).availability_zone
        zone = placed if placed in ("primary", "dr") else None
        volume = conn.block_storage.create_volume(size=1, name=f"test-machines-{tag}", availability_zone=zone)
        created.append(("volume", volume))
        conn.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=120)
        conn.compute.create_volume_attachment(server, volume_id=volume.id)
        conn.block_storage.wait_for_status(volume, status="in-use", failures=["error"], wait=120)
        conn.compute.delete_volume_attachment(server, volume.id)
        conn.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=120)

        assert ssh(key, fixed, "sudo touch /run/booted-before").returncode == 0
        conn.compute.reboot_server(server, "SOFT")
        settle(conn, server, "ACTIVE")
        wait_ssh(key, fixed)
        assert ssh(key, fixed, "test -e /run/booted-before").returncode == 1, "the guest did not reboot"

        conn.compute.stop_server(server)
        settle(conn, server, "SHUTOFF")
        assert ssh(key, fixed, "true", timeout=10).returncode != 0
        conn.compute.start_server(server)
        settle(conn, server, "ACTIVE")
        wait_ssh(key, fixed)

        external = next(iter(conn.network.networks(is_router_external=True)), None)
        if external is None:
            pytest.fail("devcloud has no external network for floating IPs")
        router = conn.network.create_router(name=f"test-{tag}", external_gateway_info={"network_id": external.id})
        created.append(("router", router))
        conn.network.add_interface_to_router(router, subnet_id=subnet.id)
        created.append(("router_interface", (router, subnet.id)))
        port = next(conn.network.ports(device_id=server.id))
        fip = conn.network.create_ip(floating_network_id=external.id, port_id=port.id)
        created.append(("fip", fip))
        wait_ssh(key, fip.floating_ip_address, limit=30)
        assert ssh(key, fip.floating_ip_address, "cat /var/tmp/nova-user-data").stdout.strip() == "via-nova"

        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120)
        created.remove(("server", server))
        taps = [net.tap_name(port.id)]
        gone = Machine(Layout(DATA_DIR), server.id)
        assert leftovers(gone, taps) == []
        wait_for("floating IP NAT removed", lambda: fip.floating_ip_address not in net.floating_ips(), 15)
    finally:
        # The server first: an attached volume cannot be deleted, a router with ports neither.
        for kind, obj in sorted(reversed(created), key=lambda c: c[0] != "server"):
            try:
                if kind == "server":
                    conn.compute.delete_server(obj, ignore_missing=True)
                    conn.compute.wait_for_delete(obj, wait=120)
                elif kind == "volume":
                    conn.block_storage.delete_volume(obj, ignore_missing=True)
                elif kind == "fip":
                    conn.network.delete_ip(obj, ignore_missing=True)
                elif kind == "router_interface":
                    conn.network.remove_interface_from_router(obj[0], subnet_id=obj[1])
                elif kind == "router":
                    conn.network.delete_router(obj, ignore_missing=True)
                elif kind == "keypair":
                    conn.compute.delete_keypair(obj, ignore_missing=True)
                elif kind == "security_group":
                    conn.network.delete_security_group(obj, ignore_missing=True)
                elif kind == "network":
                    conn.network.delete_network(obj, ignore_missing=True)
            except Exception as exc:  # noqa: BLE001 - clean up the rest, report below
                print(f"cleanup of {kind} failed: {exc}")


# --- unit: the pure parts ----------------------------------------------------------------------


@pytest.mark.unit
def test_user_data_agent_writes_files_in_every_encoding(tmp_path: Path) -> None:
    import gzip

    from devcloud.machines import guest_init

    plain, b64, gz = tmp_path / "a/plain", tmp_path / "b64", tmp_path / "gz"
    uid, gid = os.getuid(), os.getgid()
    guest_init.write_file({"path": str(plain), "content": "x\n", "permissions": "0600", "owner": f"{uid}:{gid}"})
    guest_init.write_file({"path": str(plain), "content": "y\n", "append": True, "owner": f"{uid}:{gid}"})
    guest_init.write_file({"path": str(b64), "content": base64.b64encode(b"hi").decode(), "encoding": "b64",
                           "owner": f"{uid}:{gid}"})  # fmt: skip
    packed = base64.b64encode(gzip.compress(b"zipped")).decode()
    guest_init.write_file({"path": str(gz), "content": packed, "encoding": "gz+b64", "owner": f"{uid}:{gid}"})
    assert plain.read_text() == "x\ny\n"
    assert b64.read_bytes() == b"hi"
    assert gz.read_bytes() == b"zipped"


@pytest.mark.unit
def test_user_data_agent_reads_cloud_config_scripts_and_gzip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    from devcloud.machines import guest_init

    f = tmp_path / "user-data"
    monkeypatch.setattr(guest_init, "USER_DATA", f)
    assert guest_init.load() == ("none", None)
    f.write_bytes(b"#cloud-config\nruncmd: [ls]\n")
    assert guest_init.load() == ("cloud-config", {"runcmd": ["ls"]})
    f.write_bytes(gzip.compress(b"#!/bin/sh\necho hi\n"))
    assert guest_init.load() == ("script", b"#!/bin/sh\necho hi\n")
    script = guest_init.commands_script(["echo a b", ["touch", "/tmp/with space"]])
    assert script == "#!/bin/sh\necho a b\ntouch '/tmp/with space'\n"


@pytest.mark.unit
def test_host_mirror_is_read_from_the_hosts_own_apt_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devcloud.machines import host

    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    monkeypatch.setattr(host, "SOURCES_DEB822", sources)
    monkeypatch.setattr(host, "SOURCES_LIST", tmp_path / "missing")
    assert host.debian_mirror() == "http://mirror.invalid/debian"
    assert host.security_mirror() == "http://mirror.invalid/debian-security"


@pytest.mark.unit
def test_names_fit_linux_and_match_nova_and_the_ml2_driver() -> None:
    network, port = "0123456789abcdef-0000", "fedcba9876543210-1111"
    assert net.bridge_name(network) == "brq0123456789a"
    assert net.tap_name(port) == "tapfedcba98765"  # Nova's VIF devname
    nic = net.Nic(port, "fa:16:3e:00:00:01", network, (net.Subnet("10.0.0.0/24", "10.0.0.1", ("10.0.0.5",)),))
    assert net.Nic.from_json(nic.to_json()) == nic
    assert nic.subnets[0].prefixlen == 24
