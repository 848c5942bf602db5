"""The local data centre's figures: `up` split by stage, the DCIM (Nautobot) answering, 10
servers booted in parallel through Nova to SSH-ready, and the cloud's resident memory. The last
lines are the figures.

By default it measures the cloud of this checkout (`.tonle`), starting it if needed. With
`--from-scratch DIR` it brings a cloud up in an empty data directory DIR first (taking over the
fixed ports from a running cloud, which it stops), measures there, and stops it at the end; it
reports whether the first `up` succeeded (a fresh machine must come up on the first try) and,
if it did not, why, and how a second try went.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"up_s": 300.0, "dcim_s": 300.0, "ten_servers_s": 60.0, "memory_gib": 4.0}


def devcloud(data_dir: Path, verb: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devcloud", verb],
        cwd=ROOT,
        env={**os.environ, "TONLE_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def connect(clouds_yaml: Path, cloud: str, **overrides: Any) -> Any:
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)], vendor_files=[])
    return openstack.connection.Connection(config=config.get_one(cloud=cloud, **overrides))


def bench_project(clouds_yaml: Path, tag: str, count: int) -> tuple[Any, Any]:
    """A project of the benchmark's own, with room for `count` servers, and the admin in it."""
    admin = connect(clouds_yaml, "tonle-admin")
    project = admin.identity.create_project(name=tag, domain_id="default", description="bench/devcloud.py")
    role = admin.identity.find_role("admin")
    admin.identity.assign_project_role_to_user(project, admin.identity.find_user("admin", domain_id="default"), role)
    admin.set_compute_quotas(project.id, instances=count * 2, cores=count * 2, ram=count * 2048)
    return admin, project


def ssh_ready(key: Path, address: str, deadline: float) -> None:
    while True:
        result = subprocess.run(
            [
                "ssh",
                "-i",
                str(key),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=3",
                "-o",
                "BatchMode=yes",
                f"debian@{address}",
                "true",
            ],
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address}: no SSH before the deadline: {result.stderr.decode()[-300:]}")
        time.sleep(0.5)


def boot_ten(clouds_yaml: Path, count: int = 10) -> float:
    """Seconds from the first create request until every server answers SSH; cleans up after."""
    tag = f"bench-{uuid.uuid4().hex[:6]}"
    admin, project = bench_project(clouds_yaml, tag, count)
    conn = connect(clouds_yaml, "tonle-admin", project_name=tag)
    folder = Path(tempfile.mkdtemp(prefix="tonle-bench-"))
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    network = conn.network.create_network(name=tag)
    pool = conn.network.find_subnet_pool("tenant-pool")
    subnet = conn.network.create_subnet(
        name=tag, network_id=network.id, ip_version=4, subnetpool_id=pool.id, prefixlen=26
    )
    keypair = conn.compute.create_keypair(name=tag, public_key=(folder / "id_ed25519.pub").read_text())
    image = conn.image.find_image("debian-12")
    flavor = conn.compute.find_flavor("m1.tiny")
    servers: list[Any] = []
    try:
        started = time.monotonic()
        deadline = started + 300
        for index in range(count):
            servers.append(
                conn.compute.create_server(
                    name=f"{tag}-{index}",
                    image_id=image.id,
                    flavor_id=flavor.id,
                    networks=[{"uuid": network.id}],
                    key_name=keypair.name,
                    availability_zone="primary",
                )
            )

        def ready(server: Any) -> None:
            server = conn.compute.wait_for_server(server, wait=300)
            address = next(a["addr"] for addrs in server.addresses.values() for a in addrs)
            ssh_ready(key, address, deadline)

        with ThreadPoolExecutor(max_workers=count) as pool_:
            list(pool_.map(ready, servers))
        return time.monotonic() - started
    finally:
        for server in servers:
            conn.compute.delete_server(server, ignore_missing=True)
        for server in servers:
            conn.compute.wait_for_delete(server, wait=120)
        conn.compute.delete_keypair(keypair, ignore_missing=True)
        conn.network.delete_subnet(subnet, ignore_missing=True)
        conn.network.delete_network(network, ignore_missing=True)
        admin.identity.delete_project(project, ignore_missing=True)


def dcim_answering(data_dir: Path) -> None:
    """Block until the DCIM, which `up` leaves migrating in the background, answers."""
    waited = subprocess.run(
        [sys.executable, "-m", "devcloud.dcim", "wait", "--timeout", "1800"],
        cwd=ROOT,
        env={**os.environ, "TONLE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    if waited.returncode != 0:
        raise RuntimeError(f"the DCIM did not come up: {waited.stdout[-1000:]} {waited.stderr[-2000:]}")


def memory_mib(data_dir: Path) -> float:
    status = devcloud(data_dir, "status")
    for line in status.stdout.splitlines():
        if line.startswith("memory (PSS)"):
            return float(line.split()[2])
    raise RuntimeError(f"no memory line in `devcloud status`:\n{status.stdout[-1000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from-scratch", type=Path, help="an empty data directory to bring a new cloud up in")
    args = parser.parse_args()
    data_dir = args.from_scratch.resolve() if args.from_scratch else ROOT / ".tonle"
    if args.from_scratch and data_dir.exists() and any(data_dir.iterdir()):
        sys.exit(f"{data_dir} is not empty: --from-scratch needs an empty (or new) data directory")
    takeover = "1" if args.from_scratch else "0"
    journal = Path(tempfile.mkdtemp(prefix="tonle-bench-apt-")) / "apt-journal"
    started = time.monotonic()
    up = devcloud(data_dir, "up", TONLE_DEVCLOUD_TAKEOVER=takeover, TONLE_DEVCLOUD_APT_JOURNAL=str(journal))
    up_wall = time.monotonic() - started
    first_try = "succeeded" if up.returncode == 0 else f"FAILED after {up_wall:.0f} s: {failure_of(up)}"
    if up.returncode != 0 and args.from_scratch:
        # What a new user does next; the figure below is then the second try's.
        started = time.monotonic()
        up = devcloud(data_dir, "up", TONLE_DEVCLOUD_TAKEOVER=takeover, TONLE_DEVCLOUD_APT_JOURNAL=str(journal))
        up_wall = time.monotonic() - started
    if up.returncode != 0:
        if args.from_scratch:
            devcloud(data_dir, "down")
        sys.exit(f"devcloud up failed (first try {first_try}):\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}")
    apt_calls, apt_overlaps = apt_runs(journal)
    try:
        stages: dict[str, float] = json.loads((data_dir / "devcloud" / "up-timings.json").read_text())
        dcim_answering(data_dir)
        dcim_wall = time.monotonic() - started
        ten = boot_ten(data_dir / "devcloud" / "clouds.yaml")
        memory = memory_mib(data_dir)
    finally:
        if args.from_scratch:
            devcloud(data_dir, "down")
    print(
        "stages of the last full `devcloud up` (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if k != "total")
    )
    kind = "from scratch" if args.from_scratch else "on the existing data directory"
    if args.from_scratch:
        retried = "" if first_try == "succeeded" else " (the time below is the second try's)"
        print(
            f"first try: {first_try}{retried}; apt-get runs during up: {apt_calls}, "
            f"{apt_overlaps} overlapping (devcloud/apt.py runs them one at a time)"
        )
    figure(f"devcloud up {kind}, time to ready", up_wall, "s", "up_s")
    figure("the DCIM answering, from the start of that up", dcim_wall, "s", "dcim_s")
    figure("10 servers to SSH-ready", ten, "s", "ten_servers_s")
    figure("resident memory (PSS)", memory / 1024, "GiB", "memory_gib")


def failure_of(up: subprocess.CompletedProcess[str]) -> str:
    """The last line of a failed `up` that says something."""
    lines = [line.strip() for line in (up.stderr + "\n" + up.stdout).splitlines() if line.strip()]
    return lines[-1][-300:] if lines else f"exit status {up.returncode}"


def apt_runs(journal: Path) -> tuple[int, int]:
    """(apt-get runs, runs that started before an earlier one ended) from devcloud/apt.py's journal."""
    if not journal.exists():
        return 0, 0
    spans = sorted(
        (float(start), float(end)) for start, end, *_ in (line.split() for line in journal.read_text().splitlines())
    )
    overlaps, latest_end = 0, 0.0
    for start, end in spans:
        overlaps += start < latest_end
        latest_end = max(latest_end, end)
    return len(spans), overlaps


def figure(name: str, value: float, unit: str, target: str) -> None:
    limit = TARGETS[target]
    print(f"{name}: {value:.2f} {unit} (target < {limit:g} {unit}, ratio {value / limit:.2f})")


if __name__ == "__main__":
    main()
