"""Nova snapshots (`createImage`) of devcloud machines, and servers booted from them.

A snapshot is the machine's whole root filesystem; a server booted from it is a new machine:
its own hostname, SSH host key, machine-id, and its own user data run at its first boot.

    .venv/bin/pytest -m cloud tests/cloud/test_devcloud_snapshot.py -s
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devcloud.context import data_root
from devcloud.machines import guest_init, prepare_host
from devcloud.machines.bench import free_lab_octet
from devcloud.machines.cgroups import cgroup_dirs, frozen, thaw
from devcloud.machines.image import remove_image, seed_image
from devcloud.machines.layout import Layout
from devcloud.machines.snapshot import work_dir, write_root_tar
from tests.cloud.test_devcloud_machines import Key, Lab, cloud, settle, ssh, wait_for, wait_ssh
from tests.cloud.test_devcloud_machines import _image as base_image

# Fixed at import, as tests/cloud/conftest.py does: the database fixture points
# TONLE_DATA_DIR at a temporary folder later in the session.
DATA_DIR = data_root()


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return Key(path, path.with_suffix(".pub").read_text().strip())


@pytest.fixture(scope="module")
def conn(devcloud: Any) -> Any:
    """The primary site as the `tonle` member user, when its compute host runs the nspawn driver."""
    types = {h.name: h.hypervisor_type for h in devcloud.admin.compute.hypervisors(details=True)}
    if types.get("primary-compute1") != "nspawn":
        pytest.skip(f"primary-compute1 runs hypervisor type {types.get('primary-compute1')!r}, not nspawn")
    return devcloud.primary


def _cloud_config(word: str) -> bytes:
    return f"#cloud-config\nruncmd:\n  - echo {word} > /var/tmp/user-data-ran\n".encode()


def _ran(key: Key, address: str) -> str:
    """Which user data ran on the machine (the word its runcmd wrote)."""
    return ssh(key, address, "cat /var/tmp/user-data-ran").stdout.strip()


def _user_data(word: str) -> str:
    return base64.b64encode(_cloud_config(word)).decode()


def _fixed_ip(server: Any) -> str:
    return str(next(a["addr"] for addrs in server.addresses.values() for a in addrs if a["version"] == 4))


def _identity(key: Key, address: str) -> dict[str, str]:
    """What must differ between a server and one booted from its snapshot."""
    out = ssh(key, address, "hostname; cat /etc/ssh/ssh_host_ed25519_key.pub; cat /etc/machine-id").stdout.split("\n")
    return {"hostname": out[0].strip(), "host_key": out[1].split()[1], "machine_id": out[2].strip()}


@cloud
def test_a_snapshot_boots_as_a_new_machine_with_the_files_of_the_old(conn: Any, key: Key) -> None:
    image = base_image(conn)
    flavor = min(conn.compute.flavors(), key=lambda f: (f.ram, f.vcpus))
    tag = uuid.uuid4().hex[:8]
    cleanup: list[Callable[[], Any]] = []
    try:
        network = conn.network.create_network(name=f"test-snapshot-{tag}")
        cleanup.append(lambda: conn.network.delete_network(network, ignore_missing=True))
        pools = [p for p in conn.network.subnet_pools() if p.is_default or p.is_shared]
        subnet_args: dict[str, Any] = (
            {"subnetpool_id": pools[0].id, "prefixlen": 27} if pools else {"cidr": "198.18.251.0/24"}
        )
        conn.network.create_subnet(network_id=network.id, ip_version=4, name=f"test-snapshot-{tag}", **subnet_args)
        keypair = conn.compute.create_keypair(name=f"test-snapshot-{tag}", public_key=key.public)
        cleanup.append(lambda: conn.compute.delete_keypair(keypair, ignore_missing=True))
        group = conn.network.create_security_group(name=f"test-snapshot-{tag}")
        cleanup.append(lambda: conn.network.delete_security_group(group, ignore_missing=True))
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0",
        )  # fmt: skip

        def boot(name: str, image_id: str, word: str) -> tuple[Any, str]:
            server = conn.compute.create_server(
                name=name, image_id=image_id, flavor_id=flavor.id, networks=[{"uuid": network.id}],
                key_name=keypair.name, security_groups=[{"name": group.name}], user_data=_user_data(word),
            )  # fmt: skip
            cleanup.append(lambda: _delete_server(conn, server))
            server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120)
            address = _fixed_ip(server)
            wait_ssh(key, address)
            wait_for(f"user data of {name}", lambda: _ran(key, address) == word, 30)
            return server, address

        t0 = time.monotonic()
        first, first_ip = boot(f"snap-src-{tag}", image.id, "first")
        marker = uuid.uuid4().hex
        written = ssh(key, first_ip, f"echo {marker} | sudo tee /srv/marker >/dev/null && sync")
        assert written.returncode == 0, written.stderr
        before = _identity(key, first_ip)
        t_booted = time.monotonic()

        snap = conn.compute.create_server_image(
            first, name=f"test-snapshot-{tag}", metadata={"tonle_test": tag}, wait=True, timeout=180
        )
        cleanup.append(lambda: conn.image.delete_image(snap, ignore_missing=True))
        t_snap = time.monotonic()
        settle(conn, first, "ACTIVE")
        snap = conn.image.get_image(snap.id)
        assert (snap.status, snap.disk_format, snap.container_format) == ("active", "raw", "bare")
        assert snap.properties.get("tonle_test") == tag
        assert snap.properties.get("image_location") == "snapshot"
        scratch = Layout(DATA_DIR).snapshots_dir("primary-compute1")
        assert not any(p.name.startswith(snap.id) for p in scratch.iterdir()), "snapshot scratch left behind"
        # The source carries on after it was frozen for the tar.
        assert ssh(key, first_ip, "cat /srv/marker").stdout.strip() == marker

        second, second_ip = boot(f"snap-copy-{tag}", snap.id, "second")
        t_second = time.monotonic()
        assert ssh(key, second_ip, "cat /srv/marker").stdout.strip() == marker
        after = _identity(key, second_ip)
        for what in ("hostname", "host_key", "machine_id"):
            assert after[what] != before[what], f"{what} is the source's: {after[what]}"
        assert after["machine_id"]
        console = conn.compute.get_server_console_output(second)["output"]
        assert after["host_key"] in console, "the new host key was not published on the console"
        print(
            f"\nsource SSH-ready and user data {t_booted - t0:.1f}s; snapshot {t_snap - t_booted:.1f}s "
            f"({(snap.size or 0) / 2**20:.0f} MiB); server from it ready {t_second - t_snap:.1f}s"
        )
    finally:
        for undo in reversed(cleanup):
            try:
                undo()
            except Exception as exc:  # noqa: BLE001 - clean up the rest, report it
                print(f"cleanup failed: {exc}")


def _delete_server(conn: Any, server: Any) -> None:
    conn.compute.delete_server(server, ignore_missing=True)
    conn.compute.wait_for_delete(server, wait=120)


# --- the machine layer: a stopped machine, no Nova ---------------------------------------------


@pytest.fixture
def lab() -> Iterator[Lab]:
    prepare_host(DATA_DIR)
    lab = Lab(Layout(DATA_DIR), f"test{uuid.uuid4().hex}", f"198.18.{free_lab_octet()}.", [])
    yield lab
    for m in lab.machines:
        m.destroy()


@cloud
def test_a_stopped_machine_becomes_an_image_with_its_files_and_not_its_identity(lab: Lab, key: Key) -> None:
    """The tar of a stopped machine (read as it lies, not frozen), as the image cache unpacks it.
    Booting a new machine from such a tar, and the tar of a running one, are the Nova test's."""
    source, source_ip = lab.boot(10, key, _cloud_config("first"))
    wait_ssh(key, source_ip)
    marker = uuid.uuid4().hex
    assert ssh(key, source_ip, f"echo {marker} | sudo tee /srv/marker >/dev/null").returncode == 0
    wait_for("user data", lambda: _ran(key, source_ip) == "first")
    # A running machine is frozen while its tar is written, and thawed after, also by a
    # restarted nova-compute if the one that froze it died.
    events = next(d / "cgroup.events" for d in cgroup_dirs(source.name) if (d / "cgroup.freeze").exists())
    with frozen(source.name) as did_freeze:
        assert did_freeze and "frozen 1" in events.read_text()
    assert "frozen 0" in events.read_text()
    events.with_name("cgroup.freeze").write_text("1")
    thaw(source.name)
    assert ssh(key, source_ip, "true").returncode == 0
    source.stop(timeout=30)

    image_id = f"test-snapshot-{uuid.uuid4()}"
    scratch = lab.layout.root / "snapshots" / "test"
    try:
        with work_dir(scratch, "stopped-") as work:
            snap = write_root_tar(source, work / "root.tar")
            listing = subprocess.run(["tar", "-tf", str(snap.tar)], capture_output=True, text=True, check=True)
            tree = seed_image(DATA_DIR, image_id, snap.tar)
        assert not any(scratch.iterdir()), "scratch left behind"
        assert snap.frozen_seconds == 0
        names = listing.stdout.splitlines()
        assert (tree / "srv/marker").read_text().strip() == marker
        assert (tree / "var/tmp/user-data-ran").read_text().strip() == "first"
        assert names.count("./etc/machine-id") == 1 and (tree / "etc/machine-id").read_text() == ""
        # Mount points stay, their contents do not; nor do the machine's keys and first-boot state.
        private = ("./etc/ssh/ssh_host_", "./var/lib/tonle/", "./proc/", "./run/", "./tmp/", "./dev/")
        leaked = [n for n in names if n.startswith(private) and n not in private]
        assert leaked == []
        assert (tree / "home/debian/.ssh/authorized_keys").exists()  # as any cloud's snapshot keeps them
    finally:
        remove_image(DATA_DIR, image_id)


# --- unit: the guest agent's first-boot state is per instance ----------------------------------


@pytest.mark.unit
def test_the_user_data_agent_runs_once_per_instance_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(guest_init, "STATE", tmp_path)
    monkeypatch.setattr(guest_init, "USER_DATA", tmp_path / "user-data")
    monkeypatch.setattr(guest_init, "INSTANCE_ID", tmp_path / "instance-id")
    monkeypatch.setattr(guest_init, "MACHINE_ID", tmp_path / "machine-id")

    def runs() -> bool:
        assert guest_init.main(["tonle-init", "final"]) == 0
        return "final phase done" in capsys.readouterr().out

    (tmp_path / "instance-id").write_text("1b9c3e0e-0c46-4a8e-9a43-3d1d2f0e5a10\n")
    assert runs()
    assert not runs(), "ran twice for one instance"
    assert (tmp_path / "final.done").exists()  # what the unit's condition tests on later boots
    (tmp_path / "instance-id").write_text("6f1d1f5e-4f55-4f0e-8f3c-1f7a3b5c9d21\n")  # booted from a snapshot
    assert runs()
    (tmp_path / "instance-id").write_text("../../etc\n")  # not an id: the machine-id stands in
    (tmp_path / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert runs()
    assert sorted(p.name for p in (tmp_path / "instances").iterdir()) == [
        "0123456789abcdef0123456789abcdef",
        "1b9c3e0e-0c46-4a8e-9a43-3d1d2f0e5a10",
        "6f1d1f5e-4f55-4f0e-8f3c-1f7a3b5c9d21",
    ]
