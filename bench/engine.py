"""Embedded engine: wall time of `up` and of a no-op `up` for stacks of 10, 50 and 200 resources,
and the engine's overhead as a ratio to the cloud time on the critical path.

Everything is real (Pulumi SDK and pulumi_openstack resources, in-process monitor, checkpoints
in an embedded PostgreSQL under .tonle/bench, a fresh database each run). The cloud is the
local data centre with `--cloud tonle-primary` (networks, subnets, security groups, rules and
ports through the OpenStack provider layer) for stacks up to `--double-above` resources;
otherwise, and by default, `CloudDouble`, a test double of the provider boundary with a fixed
latency per call (`--latency`). Each output line says which. `--double-above 200` runs the
200-resource stack on the real cloud too (about a minute on the local data centre).

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

from orchestrator.engines.checkpoints import PostgresCheckpointStore  # noqa: E402
from pulumi_embedded import EmbeddedEngine, ProgressEvent, RunStats, StackSpec  # noqa: E402
from pulumi_embedded.cloud_double import CloudDouble  # noqa: E402


def program() -> None:
    """`tonle:size` resources: one security group, then groups of five (network -> subnet ->
    two ports in the group, and a rule of the group). A port needs its subnet, so the longest
    chain is three cloud calls deep. One group per stack keeps within Neutron's default quota.
    """
    size = pulumi.Config("tonle").require_int("size")
    prefix = pulumi.get_stack()
    group = openstack.networking.SecGroup("sg", name=f"{prefix}-sg")
    for g in range((size - 1) // 5):
        net = openstack.networking.Network(f"net{g}", name=f"{prefix}-net{g}")
        subnet = openstack.networking.Subnet(
            f"subnet{g}", name=f"{prefix}-subnet{g}", network_id=net.id, cidr=f"10.{g // 250}.{g % 250}.0/24"
        )
        for side in ("a", "b"):
            openstack.networking.Port(
                f"port{g}{side}",
                name=f"{prefix}-port{g}{side}",
                network_id=net.id,
                fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id)],
                security_group_ids=[group.id],
            )
        openstack.networking.SecGroupRule(
            f"rule{g}", security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=1000 + g, port_range_max=1000 + g, remote_ip_prefix="0.0.0.0/0",
        )  # fmt: skip
    for i in range(size - 1 - 5 * ((size - 1) // 5)):  # make the count exact
        openstack.networking.Network(f"pad{i}", name=f"{prefix}-pad{i}")
    pulumi.export("groups", (size - 1) // 5)


def database() -> str:
    """A fresh database for this run, dropped again when the run ends."""
    os.environ.setdefault("TONLE_LOG_LEVEL", "WARNING")
    import atexit

    import psycopg

    from orchestrator.database import migrate
    from orchestrator.database.embedded import ensure_database, start_embedded, with_database

    server = start_embedded(ROOT / ".tonle" / "bench", stop_on_exit=True)
    name = f"bench_engine_{uuid.uuid4().hex[:8]}"
    ensure_database(server, name)
    url = with_database(server, name)
    migrate.upgrade(url)

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
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


def measure(engine: EmbeddedEngine, runs: list[RunStats], size: int, parallel: int, cloud: str) -> tuple[float, ...]:
    """(up s, no-op up s, summed cloud s, critical path s, bound s) for one fresh stack of `size`.
    `runs`: where `engine` reports each finished operation's figures (its `on_run`)."""
    config = {"tonle:size": size, "openstack:cloud": cloud}
    spec = StackSpec(name=f"bench-{size}-{uuid.uuid4().hex[:6]}", program="bench", config=config)
    try:
        started = time.monotonic()
        engine.up(spec, quiet)
        up_seconds = time.monotonic() - started
        stats = runs[-1]
        path = critical_path(engine.export_state(spec.name), stats.cloud_seconds_by_urn)
        started = time.monotonic()
        engine.up(spec, quiet)
        noop_seconds = time.monotonic() - started
        assert runs[-1].mutating_calls == 0, "a no-op up changed something"
        return up_seconds, noop_seconds, stats.cloud_seconds, path, max(path, stats.cloud_seconds / parallel)
    finally:
        engine.destroy(spec.name, quiet)


def quiet(event: ProgressEvent) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per cloud call of the double")
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--cloud", help="a clouds.yaml entry (e.g. tonle-primary): measure on that cloud")
    parser.add_argument("--clouds-yaml", type=Path, default=ROOT / ".tonle" / "devcloud" / "clouds.yaml")
    parser.add_argument("--double-above", type=int, default=50, help="with --cloud: larger stacks use the double")
    args = parser.parse_args()

    url = database()
    key = Fernet.generate_key()
    runs: list[RunStats] = []
    double = EmbeddedEngine(
        store=PostgresCheckpointStore(url),
        secrets_key=key,
        provider_factory=CloudDouble(latency=args.latency).factory,
        parallel=args.parallel,
        load_program=lambda name: program,
        on_run=runs.append,
    )
    real = None
    if args.cloud:
        from pulumi_embedded.openstack.provider import OpenStackProvider

        real = EmbeddedEngine(
            store=PostgresCheckpointStore(url),
            secrets_key=key,
            provider_factory=OpenStackProvider.factory(args.clouds_yaml),
            parallel=args.parallel,
            load_program=lambda name: program,
            on_run=runs.append,
        )
    rows = []
    try:
        # Warm-up, not reported: a worker has imported the resource modules, opened its database
        # connections and holds a cloud token long before its first operation.
        measure(double, runs, 6, args.parallel, "double")
        if real is not None:
            measure(real, runs, 6, args.parallel, args.cloud)
        for size in (int(s) for s in args.sizes.split(",")):
            if real is not None and size <= args.double_above:
                rows.append((args.cloud, size, *measure(real, runs, size, args.parallel, args.cloud)))
            else:
                rows.append(("double", size, *measure(double, runs, size, args.parallel, "double")))
    finally:
        double.close()
        if real is not None:
            real.close()

    real_note = f"{args.cloud} = the real cloud through the OpenStack provider layer; " if args.cloud else ""
    print(
        f"setup: parallel {args.parallel}, {os.cpu_count()} cores, real Pulumi SDK + PostgreSQL checkpoints; "
        f"{real_note}double = CloudDouble, a test double of the provider boundary, {args.latency:.2f} s per call"
    )
    for cloud, size, up_s, noop_s, cloud_s, path, bound in rows:
        print(
            f"{size} resources on {cloud}: up {up_s:.2f} s, no-op up {noop_s:.2f} s, summed cloud {cloud_s:.2f} s, "
            f"critical path {path:.2f} s, overhead ratio {up_s / bound:.2f}"
        )


if __name__ == "__main__":
    main()
