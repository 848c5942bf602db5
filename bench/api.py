"""API throughput and latency: catalogue listing and order submission against `tonle serve`.

Starts its own embedded PostgreSQL (under .tonle/bench, a fresh database each run) and API
process on loopback, seeds one ministry with ample quota, then runs a bounded number of
requests from concurrent clients. The last lines are the figures.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import account_token, free_port, fresh_database, wait_ready  # noqa: E402

ORDER = {
    "offering_id": "web-hosting",
    "plan": "small",
    "parameters": {"name": "bench", "domain": "www.bench.gov.example", "admin_email": "web@bench.gov.example"},
}


def prepare(data_dir: Path) -> tuple[str, str]:
    """A fresh database with one ministry and a requester; returns (database url, token)."""
    url = fresh_database(data_dir, "bench")
    from orchestrator.actors import SYSTEM
    from orchestrator.database.core import session_scope
    from orchestrator.ministry import service as ministries
    from orchestrator.ministry.models import MinistryCreate, QuotaLimits

    big = 10**9
    with session_scope() as session:
        ministry = ministries.create(
            session=session,
            actor=SYSTEM,
            data=MinistryCreate(
                code="bench",
                name="Ministry of Benchmarks",
                quota_limits=QuotaLimits(vcpu=big, ram_gb=big, storage_gb=big, object_gb=big, public_ips=big),
                dns_suffixes=["bench.gov.example"],
            ),
        )
        token = account_token(session, "bench", "requester", ministry.id)
    return url, token


def measure(base: str, token: str, method: str, path: str, body: object, total: int, clients: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []

    def one_client(count: int) -> list[float]:
        mine = []
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for _ in range(count):
                start = time.perf_counter()
                response = client.request(method, path, json=body)
                mine.append(time.perf_counter() - start)
                if response.status_code >= 300:
                    raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return mine

    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for result in pool.map(one_client, per_client):
            latencies.extend(result)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--api-workers", type=int, default=2, help="API processes")
    args = parser.parse_args()

    data_dir = ROOT / ".tonle" / "bench"
    data_dir.mkdir(parents=True, exist_ok=True)
    url, token = prepare(data_dir)
    port = free_port()
    env = {**os.environ, "TONLE_DATABASE_URL": url, "TONLE_LOG_LEVEL": "WARNING"}
    api = subprocess.Popen(
        [sys.executable, "-m", "portal_api.cli", "serve", "--port", str(port), "--workers", str(args.api_workers)],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, api)
        measure(base, token, "GET", "/v1/catalog", None, 50, 4)  # warm-up
        catalogue = measure(base, token, "GET", "/v1/catalog", None, args.requests, args.clients)
        orders = measure(base, token, "POST", "/v1/requests", ORDER, args.requests, args.clients)
    finally:
        api.terminate()
        api.wait(timeout=20)
    print(
        f"setup: {args.requests} requests per scenario, {args.clients} clients, "
        f"{args.api_workers} API processes, {os.cpu_count()} cores"
    )
    for name, figures in (("catalogue listing", catalogue), ("order submission", orders)):
        print(f"{name}: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
