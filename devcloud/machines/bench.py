"""Machine-layer timings, without OpenStack: N machines booted in parallel to SSH-ready.

    python -m devcloud.machines bench --count 10

For bench/devcloud.py (which measures the same through Nova): `boot_to_ssh(data_dir, n)`
returns the figures as a dict. Uses its own bridge and 198.18.0.0/15 addresses (RFC 2544's
benchmarking range) and destroys every machine it made, even on failure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devcloud.machines import image, net
from devcloud.machines.layout import Layout
from devcloud.machines.machine import Machine, MachineSpec


def _ssh_ready(key: Path, address: str, limit: float, m: Machine) -> float:
    t0 = time.monotonic()
    opts = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes", "ConnectTimeout=2"]
    argv = ["ssh", "-i", str(key), "-o", "LogLevel=ERROR", f"debian@{address}", "true"]
    for o in opts:
        argv[1:1] = ["-o", o]
    err = b""
    while time.monotonic() - t0 < limit:
        proc = subprocess.run(argv, capture_output=True, check=False)
        if proc.returncode == 0:
            return time.monotonic() - t0
        err = proc.stderr
        time.sleep(0.1)
    console = m.console(2000).decode(errors="replace")
    raise TimeoutError(
        f"no SSH to {address} ({m.name}, {m.power()}) within {limit:.0f}s: {err.decode().strip()}\n"
        f"console tail:\n{console}"
    )


def free_lab_octet() -> int:
    """A third octet N such that neither 198.18.N.0/24 nor 198.19.N.0/24 is on any interface
    of the host: lab networks of tests and benchmarks must not clash with each other's."""
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    used = {
        int(a["local"].split(".")[2])
        for link in json.loads(out or "[]")
        for a in link.get("addr_info", [])
        if a["local"].startswith(("198.18.", "198.19."))
    }
    free = [n for n in range(20, 240) if n not in used]
    return free[int.from_bytes(os.urandom(2), "big") % len(free)]


def boot_to_ssh(data_dir: Path, count: int, limit: float = 120.0) -> dict[str, float]:
    """Boot `count` machines at once; seconds until each answers SSH, and memory per machine."""
    layout = Layout(data_dir)
    lower = image.base_rootfs(data_dir)
    third = free_lab_octet()
    network = f"bench{uuid.uuid4().hex}"
    machines: list[Machine] = []
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public = key.with_suffix(".pub").read_text()

        def one(i: int) -> float:
            t0 = time.monotonic()
            ip = f"198.18.{third}.{10 + i}"
            m = Machine(layout, f"bench-{uuid.uuid4()}")
            machines.append(m)
            nic = net.Nic(
                port_id=uuid.uuid4().hex,
                mac=f"fa:16:3e:{third:02x}:00:{10 + i:02x}",
                network_id=network,
                subnets=(net.Subnet(f"198.18.{third}.0/24", f"198.18.{third}.1", (ip,)),),
            )
            m.create(MachineSpec(name=m.name, hostname=f"bench{i}", nics=[nic], lower=lower, authorized_keys=public))
            m.start()
            return time.monotonic() - t0 + _ssh_ready(key, ip, limit, m)

        try:
            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=count) as pool:
                each = list(pool.map(one, range(count)))
            wall = time.monotonic() - t0
            time.sleep(2)  # let first-boot units settle before measuring memory
            mem = [m.memory_bytes() for m in machines]
        finally:
            with ThreadPoolExecutor(max_workers=count) as pool:
                list(pool.map(lambda m: m.destroy(), machines))
    return {
        "count": count,
        "wall_s": wall,
        "slowest_s": max(each),
        "median_s": statistics.median(each),
        "mem_per_machine_mib": statistics.mean(mem) / 2**20,
    }
