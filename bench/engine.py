"""Embedded engine: wall time of `up` and of a no-op `up` for stacks of 10, 50 and 200 resources,
and the engine's overhead as a ratio to the cloud time on the critical path.

Everything is real (Pulumi SDK and pulumi_openstack resources, in-process monitor, checkpoints
in an embedded PostgreSQL under .tonle/bench, a fresh database each run) except the cloud:
`CloudDouble`, a test double of the provider boundary, with a fixed latency per call
(`--latency`, default 0.3 s, about one Neutron call on the local data centre), because the
local data centre is not always up and would add its own noise. The output says so.

Critical path: the longest chain of dependent resources, each weighted by its measured cloud
time; with bounded parallelism no scheduler can beat summed cloud time / parallel either, so
the bound used is the larger of the two. Overhead ratio = wall time / that bound (1.0 = none).
The last lines are the figures.
"""

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
import pulumi_openstack as openstack  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from orchestrator.engines.embedded.cloud_double import CloudDouble  # noqa: E402
from orchestrator.engines.embedded.engine import EmbeddedEngine  # noqa: E402
from orchestrator.pipeline.engine import StackSpec  # noqa: E402
from orchestrator.pipeline.events import ProgressEvent  # noqa: E402


def program() -> None:
    """`tonle:size` resources in groups of five: network -> subnet -> port, security group -> rule.

    The port needs the subnet and the group, so the longest chain is three cloud calls deep.
    """
    size = pulumi.Config("tonle").require_int("size")
    for g in range(size // 5):
        net = openstack.networking.Network(f"net{g}", name=f"bench-net{g}", tags=["bench"])
        subnet = openstack.networking.Subnet(f"subnet{g}", network_id=net.id, cidr=f"10.{g // 250}.{g % 250}.0/24")
        group = openstack.networking.SecGroup(f"sg{g}", name=f"bench-sg{g}")
        openstack.networking.SecGroupRule(
            f"rule{g}", security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=443, port_range_max=443, remote_ip_prefix="0.0.0.0/0",
        )  # fmt: skip
        openstack.networking.Port(
            f"port{g}",
            network_id=net.id,
            fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id)],
            security_group_ids=[group.id],
        )
    pulumi.export("groups", size // 5)


def database() -> str:
    os.environ.setdefault("TONLE_LOG_LEVEL", "WARNING")
    from orchestrator.database import migrate
    from orchestrator.database.embedded import ensure_database, start_embedded, with_database

    server = start_embedded(ROOT / ".tonle" / "bench", stop_on_exit=True)
    name = f"bench_engine_{uuid.uuid4().hex[:8]}"
    ensure_database(server, name)
    url = with_database(server, name)
    migrate.upgrade(url)
    return url


def critical_path(export: dict[str, Any], seconds_by_urn: dict[str, float]) -> float:
    """Longest dependency chain, each resource weighted by its cloud time."""
    resources = {r["urn"]: r for r in export["deployment"]["resources"]}
    memo: dict[str, float] = {}

    def finish(urn: str) -> float:
        if urn not in memo:
            needs = set(resources[urn].get("dependencies", []))
            for urns in resources[urn].get("propertyDependencies", {}).values():
                needs.update(urns)
            memo[urn] = seconds_by_urn.get(urn, 0.0) + max((finish(u) for u in needs if u in resources), default=0.0)
        return memo[urn]

    return max((finish(u) for u in resources), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per cloud call of the double")
    parser.add_argument("--parallel", type=int, default=64)
    args = parser.parse_args()

    url = database()
    cloud = CloudDouble(latency=args.latency)
    engine = EmbeddedEngine(
        database_url=url,
        secrets_key=Fernet.generate_key(),
        provider_factory=cloud.factory,
        parallel=args.parallel,
        load_program=lambda name: program,
    )

    def quiet(event: ProgressEvent) -> None:
        return None

    rows = []
    try:
        # Warm-up, not reported: a worker process has imported the resource modules and opened
        # its database connections long before its first operation.
        warm = StackSpec(name=f"bench-warm-{uuid.uuid4().hex[:6]}", program="bench", config={"tonle:size": 5})
        engine.up(warm, quiet)
        engine.destroy(warm.name, quiet)
        for size in (int(s) for s in args.sizes.split(",")):
            spec = StackSpec(name=f"bench-{size}-{uuid.uuid4().hex[:6]}", program="bench", config={"tonle:size": size})
            started = time.monotonic()
            engine.up(spec, quiet)
            up_seconds = time.monotonic() - started
            stats = engine.last_run
            assert stats is not None
            path = critical_path(engine.export_state(spec.name), stats.cloud_seconds_by_urn)
            bound = max(path, stats.cloud_seconds / args.parallel)
            started = time.monotonic()
            engine.up(spec, quiet)
            noop_seconds = time.monotonic() - started
            assert engine.last_run is not None and engine.last_run.mutating_calls == 0
            rows.append((size, up_seconds, noop_seconds, stats.cloud_seconds, path, bound, up_seconds / bound))
            engine.destroy(spec.name, quiet)
    finally:
        engine.close()

    print(
        f"setup: cloud = CloudDouble (test double of the provider boundary, {args.latency:.2f} s per call; "
        f"the local data centre was not used), parallel {args.parallel}, {os.cpu_count()} cores, "
        "real Pulumi SDK + PostgreSQL checkpoints"
    )
    for size, up_s, noop_s, cloud_s, path, bound, ratio in rows:
        print(
            f"{size} resources: up {up_s:.2f} s, no-op up {noop_s:.2f} s, summed cloud {cloud_s:.2f} s, "
            f"critical path {path:.2f} s, bound {bound:.2f} s, overhead ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
