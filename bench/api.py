"""API throughput and latency against the framework's ceiling, measured by `wrk` (Debian's `wrk`).

In one run, on the same machine and the same server stack (`tonle serve`'s uvicorn settings, the
same number of worker processes):
- Tonle (`tonle serve`) on a fresh database (embedded PostgreSQL under .tonle/bench, a new
  database each run) with one ministry and a requester: catalogue listing (GET /v1/catalog) and
  order submission (POST /v1/requests, each with a fresh Idempotency-Key, from a Lua script);
- a bare FastAPI app answering every GET with the catalogue's bytes (a static JSON response of the
  same size): what the server stack alone can do;
- the same bare app answering every POST by committing the body as one row, one statement alone in
  autocommit through Tonle's own database engine (same driver and pool, same PostgreSQL), as Tonle
  sends an order: what the cheapest durable write costs here, the fairer ceiling for order
  submission, which must commit. Its own ratio to the static answer shows how much of the order
  target a handler that does nothing but write can reach.

`wrk` is written in C, so the load generator takes little of the CPU the servers share. The last
lines are Tonle's rates, their ratios to the bare app's rate, the p99s, and the bare app's rate.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import account_token, free_port, fresh_database, wait_ready  # noqa: E402


def order(ministry: int) -> dict[str, Any]:
    """A small web site in the ministry's own domain."""
    domain = f"bench{ministry}.gov.example"
    return {
        "offering_id": "web-hosting",
        "plan": "small",
        "parameters": {"name": "bench", "domain": f"www.{domain}", "admin_email": f"web@{domain}"},
    }


TARGET_CATALOGUE_RATIO = 0.7
TARGET_ORDER_RATIO = 0.3
TARGET_P99_MS = 50.0
# The bare app reads the bytes it serves from this file (set by this bench for its processes).
BARE_BODY_ENV = "TONLE_BENCH_BARE_BODY"

# Every wrk thread numbers its requests; with the thread's own number and the run's nonce in the
# key, every order carries an Idempotency-Key no other order in any run had.
ORDER_SCRIPT = """
local counter = 0
local threads_made = 0
-- setup() runs in the main Lua state; each thread's own state gets its global thread_number.
function setup(thread)
  threads_made = threads_made + 1
  thread:set("thread_number", threads_made)
end
-- args: the run's nonce, then a body and a token for each ministry, in turn.
function init(args)
  nonce = args[1]
  orders = {}
  for i = 2, #args, 2 do
    orders[#orders + 1] = {body = args[i], token = args[i + 1]}
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local order = orders[(counter + thread_number) % #orders + 1]
  wrk.headers["Authorization"] = "Bearer " .. order.token
  wrk.headers["Idempotency-Key"] = nonce .. "-" .. thread_number .. "-" .. counter
  return wrk.format(nil, nil, nil, order.body)
end
"""

# Printed by every run as one JSON line: wrk's own text report rounds and changes units.
REPORT_SCRIPT = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non_2xx": %d, '
    .. '"socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


BARE_TABLE = "bench_bare_write"
# The bare app answers a POST with the bytes of one of Tonle's order answers, read from this file.
BARE_ORDER_BODY_ENV = "TONLE_BENCH_BARE_ORDER_BODY"


def bare_app() -> Any:
    """The ceilings: FastAPI answering every GET with fixed bytes (no database, no validation), and
    every POST by committing its body as one row, then answering with fixed bytes."""
    from fastapi import FastAPI, Request, Response
    from sqlalchemy import text
    from starlette.concurrency import run_in_threadpool

    from orchestrator.database.core import get_engine

    catalogue = Path(os.environ[BARE_BODY_ENV]).read_bytes()
    answer = Path(os.environ[BARE_ORDER_BODY_ENV]).read_bytes()
    insert = text(f"INSERT INTO {BARE_TABLE} (body) VALUES (CAST(:body AS jsonb))")
    app = FastAPI()

    def commit_row(payload: str) -> None:
        # One statement alone, in autocommit, as Tonle sends an order (UnitOfWork.commit_with).
        with get_engine().connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(insert, {"body": payload})

    @app.get("/{path:path}")
    def static(path: str) -> Response:
        return Response(content=catalogue, media_type="application/json")

    @app.post("/{path:path}")
    async def write(path: str, request: Request) -> Response:
        await run_in_threadpool(commit_row, (await request.body()).decode())  # as Tonle's sync endpoints run
        return Response(content=answer, status_code=201, media_type="application/json")

    return app


def create_bare_table() -> None:
    from sqlalchemy import text

    from orchestrator.database.core import get_engine

    with get_engine().begin() as connection:
        connection.execute(text(f"CREATE TABLE {BARE_TABLE} (id bigserial PRIMARY KEY, body jsonb NOT NULL)"))


def prepare(data_dir: Path, ministries: int) -> tuple[str, list[str]]:
    """A fresh database with ministries, each with ample quota and a requester; returns (database
    url, the requesters' tokens)."""
    url = fresh_database(data_dir, "bench")
    from orchestrator.actors import SYSTEM
    from orchestrator.database.core import session_scope
    from orchestrator.ministry import service as ministry_service
    from orchestrator.ministry.models import MinistryCreate, QuotaLimits

    big = 10**9
    tokens = []
    with session_scope() as session:
        for number in range(ministries):
            ministry = ministry_service.create(
                session=session,
                actor=SYSTEM,
                data=MinistryCreate(
                    code=f"bench{number}",
                    name=f"Ministry of Benchmarks {number}",
                    quota_limits=QuotaLimits(vcpu=big, ram_gb=big, storage_gb=big, object_gb=big, public_ips=big),
                    dns_suffixes=[f"bench{number}.gov.example"],
                ),
            )
            tokens.append(account_token(session, f"bench{number}", "requester", ministry.id))
    return url, tokens


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"wrk (\S+)", result.stdout + result.stderr)
    return found.group(1) if found else "unknown"


def run_wrk(
    url: str,
    *,
    token: str | None,
    seconds: int,
    connections: int,
    script: str,
    script_args: list[str] | None = None,
    warm_up: bool = False,
) -> dict[str, float]:
    """One wrk run; its figures (requests/s, p50 and p99 in ms). Any non-2xx answer fails the bench,
    and so does a measured run that completed nothing."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script + REPORT_SCRIPT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", lua.name]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        os.unlink(lua.name)
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH "))
    report = json.loads(line.removeprefix("BENCH "))
    if report["non_2xx"] or report["socket_errors"] or not (report["requests"] or warm_up):
        raise RuntimeError(f"{url}: {report}\n{result.stdout}")
    return {
        "rps": report["requests"] / (report["duration_us"] / 1e6),
        "p50_ms": report["p50_us"] / 1000,
        "p99_ms": report["p99_us"] / 1000,
        "requests": report["requests"],
    }


def post_orders(url: str, bodies_and_tokens: list[str], *, warm: int, measure: dict[str, int]) -> dict[str, float]:
    """A warm-up run, then the measured one, each with Idempotency-Keys of its own."""
    for warm_up, seconds in ((True, warm), (False, measure["seconds"])):
        figures = run_wrk(
            url,
            token=None,
            script=ORDER_SCRIPT,
            script_args=[os.urandom(8).hex(), *bodies_and_tokens],
            seconds=seconds,
            connections=measure["connections"],
            warm_up=warm_up,
        )
    return figures


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--api-workers", type=int, default=2, help="server processes, Tonle's and the bare app's")
    parser.add_argument(
        "--ministries",
        type=int,
        default=8,
        help="ministries whose requesters take turns ordering (one ministry's orders queue behind its quota lock)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    from portal_api.cli.server import SERVER_STACK

    data_dir = ROOT / ".tonle" / "bench"
    data_dir.mkdir(parents=True, exist_ok=True)
    url, tokens = prepare(data_dir, args.ministries)
    create_bare_table()
    token = tokens[0]
    env = {**os.environ, "TONLE_DATABASE_URL": url, "TONLE_LOG_LEVEL": "WARNING"}
    warm = max(5, args.seconds // 2)  # first requests import and prepare: slow on a busy machine
    measure = {"seconds": args.seconds, "connections": args.connections}

    port = free_port()
    tonle = start(
        [sys.executable, "-m", "portal_api.cli", "serve", "--port", str(port), "--workers", str(args.api_workers)],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, tonle, timeout=600)  # a busy machine imports slowly
        catalogue_bytes = httpx.get(f"{base}/v1/catalog", headers={"Authorization": f"Bearer {token}"}).content
        run_wrk(f"{base}/v1/catalog", token=token, script="", seconds=warm, connections=args.connections, warm_up=True)
        catalogue = run_wrk(f"{base}/v1/catalog", token=token, script="", **measure)
        bodies_and_tokens = [part for n, t in enumerate(tokens) for part in (json.dumps(order(n)), t)]
        order_answer = (
            httpx.post(f"{base}/v1/requests", json=order(0), headers={"Authorization": f"Bearer {token}"})
            .raise_for_status()
            .content
        )
        orders = post_orders(f"{base}/v1/requests", bodies_and_tokens, warm=warm, measure=measure)
    finally:
        stop(tonle)

    body_files = {}
    for variable, content in ((BARE_BODY_ENV, catalogue_bytes), (BARE_ORDER_BODY_ENV, order_answer)):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as body_file:
            body_file.write(content)
        body_files[variable] = body_file.name
    port = free_port()
    bare_command = [
        sys.executable, "-m", "uvicorn", "bench.api:bare_app", "--factory", "--port", str(port),
        "--workers", str(args.api_workers), "--no-access-log", "--log-level", "warning",
        "--loop", SERVER_STACK["loop"], "--http", SERVER_STACK["http"],
    ]  # fmt: skip
    bare = start(bare_command, {**env, **body_files})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, bare, timeout=600)
        run_wrk(f"{base}/v1/catalog", token=None, script="", seconds=warm, connections=args.connections, warm_up=True)
        ceiling = run_wrk(f"{base}/v1/catalog", token=None, script="", **measure)
        writes = post_orders(f"{base}/v1/requests", bodies_and_tokens, warm=warm, measure=measure)
    finally:
        stop(bare)
        for name in body_files.values():
            os.unlink(name)

    print(
        f"setup: wrk {wrk_version()}, {args.connections} connections, {args.seconds} s per run, "
        f"{args.api_workers} server processes each, uvicorn loop={SERVER_STACK['loop']} http={SERVER_STACK['http']}, "
        f"{os.cpu_count()} cores, catalogue {len(catalogue_bytes)} bytes, orders from {args.ministries} ministries; "
        f"requests measured: catalogue {catalogue['requests']:.0f}, orders {orders['requests']:.0f}, "
        f"bare {ceiling['requests']:.0f}, bare writes {writes['requests']:.0f}"
    )
    for name, figures, target in (
        ("catalogue listing", catalogue, TARGET_CATALOGUE_RATIO),
        ("order submission", orders, TARGET_ORDER_RATIO),
    ):
        print(
            f"{name}: {figures['rps']:.0f} req/s, ratio to bare {figures['rps'] / ceiling['rps']:.2f} "
            f"(target >= {target}), p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms "
            f"(target < {TARGET_P99_MS:.0f} ms)"
        )
    print(
        f"order submission to the bare app committing one row per request: ratio "
        f"{orders['rps'] / writes['rps']:.2f} (the bare app's writes: {writes['rps']:.0f} req/s, "
        f"p50 {writes['p50_ms']:.1f} ms, p99 {writes['p99_ms']:.1f} ms; "
        f"ratio {writes['rps'] / ceiling['rps']:.2f} to its own static answer)"
    )
    print(
        f"bare FastAPI, same server stack, static JSON of the catalogue's size: {ceiling['rps']:.0f} req/s, "
        f"p50 {ceiling['p50_ms']:.1f} ms, p99 {ceiling['p99_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
