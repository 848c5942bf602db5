"""SSH host keys, learned from the console and pinned, against the local data centre.

A server booted through openstacksdk in a ministry's project publishes its host keys on its
console at first boot; the orchestrator's adapter reads them through Nova's console-log API,
they match what the server presents on port 22, and a playbook run with them pinned passes.
With another key pinned, as a man in the middle would present, the pre-flight check fails with
"host key changed" and Ansible itself refuses to connect: nothing runs on the server.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ansible.runner import AnsibleRunner
from orchestrator.cloud.hostkeys import BEGIN, ConsoleHostKeys, HostKeyChanged, known_hosts, parse_console
from orchestrator.cloud.sites import connect
from orchestrator.cloud.tenancy import OpenStackTenancy, project_name
from orchestrator.config import Settings
from orchestrator.ports import PlaybookRun, ProgressEvent
from tests.cloud.conftest import DevCloud

pytestmark = [
    pytest.mark.cloud,
    pytest.mark.security,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local data centre needs root"),
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client (apt-get install openssh-client)"),
]

MINISTRY = "hostkeys"
SITE = "primary"
MARKER = "/var/tmp/tonle-hostkeys-runs"
PLAYBOOK = f"""- hosts: all
  gather_facts: false
  tasks:
    - name: leave a mark, so a refused run can be told apart
      ansible.builtin.shell: echo ran >> {MARKER}
"""


@dataclass(frozen=True)
class Booted:
    server_id: str
    address: str
    private_key: Path


@pytest.fixture(scope="module")
def settings(devcloud: DevCloud) -> Settings:
    return Settings(clouds_yaml=devcloud.clouds_yaml)


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """A server in the ministry's project, reachable from here on SSH at its fixed address."""
    OpenStackTenancy(settings).ensure(
        ministry_code=MINISTRY, ministry_name="Host keys test", site_name=SITE, on_event=lambda _: None
    )
    conn = connect(settings, settings.site_clouds[SITE], project_name=project_name(MINISTRY))
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    images = [i for i in conn.image.images() if i.status == "active" and "debian" in (i.name or "").lower()]
    if not images:
        pytest.skip("no active Debian image in Glance yet")
    tag = uuid.uuid4().hex[:8]
    created: list[tuple[str, Any]] = []
    try:
        network = conn.network.create_network(name=f"test-hostkeys-{tag}")
        created.append(("network", network))
        pools = [p for p in conn.network.subnet_pools() if p.is_default or p.is_shared]
        subnet_args: dict[str, Any] = (
            {"subnetpool_id": pools[0].id, "prefixlen": 28} if pools else {"cidr": "198.18.251.0/24"}
        )
        conn.network.create_subnet(network_id=network.id, ip_version=4, name=f"test-hostkeys-{tag}", **subnet_args)
        group = conn.network.create_security_group(name=f"test-hostkeys-{tag}")
        created.append(("security_group", group))
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0",
        )  # fmt: skip
        keypair = conn.compute.create_keypair(
            name=f"test-hostkeys-{tag}", public_key=key.with_suffix(".pub").read_text().strip()
        )
        created.append(("keypair", keypair))
        flavor = min(conn.compute.flavors(), key=lambda f: (f.ram, f.vcpus))
        booted = conn.compute.create_server(
            name=f"test-hostkeys-{tag}",
            image_id=images[0].id,
            flavor_id=flavor.id,
            networks=[{"uuid": network.id}],
            key_name=keypair.name,
            security_groups=[{"name": group.name}],
            user_data=base64.b64encode(b"#cloud-config\nruncmd:\n  - echo done > /var/tmp/runcmd\n").decode(),
        )
        created.append(("server", booted))
        booted = conn.compute.wait_for_server(booted, status="ACTIVE", wait=180)
        fixed = next(a["addr"] for addrs in booted.addresses.values() for a in addrs if a["version"] == 4)
        yield Booted(server_id=booted.id, address=fixed, private_key=key)
    finally:
        for kind, obj in sorted(reversed(created), key=lambda c: c[0] != "server"):
            try:
                if kind == "server":
                    conn.compute.delete_server(obj, ignore_missing=True)
                    conn.compute.wait_for_delete(obj, wait=120)
                elif kind == "keypair":
                    conn.compute.delete_keypair(obj, ignore_missing=True)
                elif kind == "security_group":
                    conn.network.delete_security_group(obj, ignore_missing=True)
                elif kind == "network":
                    for port in conn.network.ports(network_id=obj.id):
                        conn.network.delete_port(port, ignore_missing=True)
                    for subnet in conn.network.subnets(network_id=obj.id):
                        conn.network.delete_subnet(subnet, ignore_missing=True)
                    conn.network.delete_network(obj, ignore_missing=True)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on; the failure is printed
                print(f"cleanup of {kind} failed: {exc}")
        conn.close()


def ssh_pinned(booted: Booted, known_hosts_file: Path, command: str) -> subprocess.CompletedProcess[str]:
    """SSH as a careful client would: only the pinned keys are accepted."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(booted.private_key), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts_file}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
         f"debian@{booted.address}", command],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def wait_ssh(booted: Booted, known_hosts_file: Path, limit: float = 120) -> None:
    t0, last = time.monotonic(), ""
    while time.monotonic() - t0 < limit:
        done = ssh_pinned(booted, known_hosts_file, "true")
        if done.returncode == 0:
            return
        last = done.stderr.strip()
        time.sleep(0.5)
    pytest.fail(f"no SSH to {booted.address} with its pinned key within {limit:.0f}s: {last}")


def random_ed25519() -> str:
    blob = b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + os.urandom(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


@pytest.fixture(scope="module")
def playbooks() -> Iterator[Path]:
    # Ansible runs as an unprivileged account: its playbooks must be readable by others.
    folder = Path(tempfile.mkdtemp(prefix="tonle-hostkeys-playbooks-", dir="/var/tmp"))
    folder.chmod(0o755)
    (folder / "hostkeys_probe.yml").write_text(PLAYBOOK)
    (folder / "hostkeys_probe.yml").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_keys_from_the_console_are_the_servers_and_pinning_them_lets_only_it_in(
    settings: Settings, server: Booted, playbooks: Path, tmp_path: Path
) -> None:
    events: list[ProgressEvent] = []
    source = ConsoleHostKeys(settings, timeout_seconds=120, poll_seconds=1)
    learned = source.learn(
        host="web", spec={"server_id": server.server_id}, ministry_code=MINISTRY, site_name=SITE, on_event=events.append
    )
    assert learned.server_id == server.server_id
    assert learned.keys and all(k.startswith("ssh-ed25519 ") for k in learned.keys)
    assert any(e.type == "ssh.host_keys" and "SHA256:" in e.message for e in events)

    # The block is there for anyone with the project's API access, as openstacksdk gives it.
    conn = connect(settings, settings.site_clouds[SITE], project_name=project_name(MINISTRY))
    console = conn.compute.get_server_console_output(server.server_id)["output"]
    conn.close()
    assert BEGIN in console and parse_console(console) == learned.keys

    # A stack output from before hosts carried a server_id: found by its address.
    by_address = source.learn(
        host="web", spec={"address": server.address}, ministry_code=MINISTRY, site_name=SITE, on_event=events.append
    )
    assert by_address == learned

    hosts = {"web": {"address": server.address, "groups": ["web"], "user": "debian", "server_id": server.server_id}}
    pinned = known_hosts({"web": {"server_id": server.server_id, "keys": learned.keys}}, hosts)
    pinned_file = tmp_path / "known_hosts"
    pinned_file.write_text(pinned)
    # The key the server presents on port 22 is the one from its console.
    wait_ssh(server, pinned_file)
    source.verify(hosts=hosts, known_hosts=pinned)

    runner = AnsibleRunner(playbooks_dir=playbooks, runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    private_key = server.private_key.read_text()
    run = PlaybookRun(
        playbook="hostkeys_probe", hosts=hosts, ssh_private_key=private_key, label="hostkeys", known_hosts=pinned
    )
    result = runner.run(run, events.append)
    assert result.ok, result.failures
    assert ssh_pinned(server, pinned_file, f"cat {MARKER}").stdout.split() == ["ran"]

    # Another key pinned, as a man in the middle would present: refused before Ansible...
    wrong = known_hosts({"web": {"keys": [random_ed25519()]}}, hosts)
    with pytest.raises(HostKeyChanged, match="host key changed"):
        source.verify(hosts=hosts, known_hosts=wrong)
    # ...and by Ansible itself, should it be asked anyway: unreachable, nothing run. Its SSH
    # master connection from the run above (ControlPersist) would be reused without a new key
    # exchange, so it goes first: a man in the middle starts with a fresh connection.
    for socket in (runner.account.home / ".ansible" / "cp").glob("*"):
        socket.unlink()
    events.clear()
    refused = runner.run(
        PlaybookRun(
            playbook="hostkeys_probe", hosts=hosts, ssh_private_key=private_key, label="hostkeys", known_hosts=wrong
        ),
        events.append,
    )
    assert not refused.ok
    # OpenSSH's words under Ansible's own strategy; Mitogen's (which runs the same ssh) under its own.
    refusals = ("Host key verification failed", "SSH reported an unrecognized or mismatching host key")
    assert any("unreachable" in e.message and any(r in e.message for r in refusals) for e in events), [
        e.message for e in events
    ]
    assert ssh_pinned(server, pinned_file, f"cat {MARKER}").stdout.split() == ["ran"]
