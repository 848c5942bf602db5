"""Wall time from approval to `active` on the local data centre: web hosting, one order then 10
orders from 5 ministries at once, and one e-mail domain; each split into orchestrator, cloud
(engine), Ansible and health-check time from its operation's step timings. The last lines are
the figures.

Needs the local data centre (`make devcloud-up`); starts its own embedded PostgreSQL database,
API and worker processes (embedded engine, Ansible), and decommissions what it built.
"""

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import (  # noqa: E402
    account_token,
    api_and_worker,
    fresh_database,
    headers,
    order_mail_domain,
    order_web_site,
)

STEP_GROUPS = {"plan": "cloud", "apply": "cloud", "configure": "ansible", "verify": "health"}


def prepare(data_dir: Path, ministries: int) -> tuple[str, list[dict[str, str]], str]:
    """A fresh database with ministries, each with a requester and an approver, and an operator."""
    url = fresh_database(data_dir, "provision")
    from orchestrator.actors import SYSTEM
    from orchestrator.database.core import session_scope
    from orchestrator.ministry import service as ministry_service
    from orchestrator.ministry.models import MinistryCreate, QuotaLimits

    tenants = []
    with session_scope() as session:
        for index in range(ministries):
            code = f"bench{index}-{uuid.uuid4().hex[:4]}"
            ministry = ministry_service.create(
                session=session,
                actor=SYSTEM,
                data=MinistryCreate(
                    code=code,
                    name=f"Ministry {index}",
                    quota_limits=QuotaLimits(
                        vcpu=64, ram_gb=128, storage_gb=2000, object_gb=2000, public_ips=20, mailboxes=50
                    ),
                    dns_suffixes=[f"{code}.gov.example"],
                ),
            )
            tenants.append(
                {
                    "code": code,
                    "requester": account_token(session, f"{code}-req", "requester", ministry.id),
                    "approver": account_token(session, f"{code}-appr", "ministry_approver", ministry.id),
                }
            )
        operator = account_token(session, f"operator-{uuid.uuid4().hex[:4]}", "operator", None)
    return url, tenants, operator


def provision(
    base: str, tenant: dict[str, str], operator: str, timeout: float, *, offering: str = "web-hosting"
) -> dict[str, float]:
    """Order, approve, wait for `active`, decommission; return seconds per part."""
    domain = f"b{uuid.uuid4().hex[:8]}.{tenant['code']}.gov.example"
    with httpx.Client(base_url=base, timeout=60) as client:
        if offering == "email":
            approved, approved_at = order_mail_domain(client, tenant, operator, domain=domain)
        else:
            approved, approved_at = order_web_site(client, tenant, operator, name="bench", domain=domain)
        deadline = approved_at + timeout
        while True:
            operation = client.get(f"/v1/operations/{approved['operation_id']}", headers=headers(operator)).json()
            if operation["status"] in ("succeeded", "failed"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"operation {operation['id']} still {operation['status']} after {timeout} s")
            time.sleep(0.5)
        total = time.monotonic() - approved_at
        if operation["status"] != "succeeded":
            raise RuntimeError(
                f"operation {operation['id']} failed at {operation['failed_step']}: {operation['error']}"
            )
        parts = {"cloud": 0.0, "ansible": 0.0, "health": 0.0}
        for step in operation["steps"]:
            started, finished = (datetime.fromisoformat(step[k]) for k in ("started_at", "finished_at"))
            # Steps outside the groups (install_devices, a no-op here) count as the orchestrator's.
            if step["name"] in STEP_GROUPS:
                parts[STEP_GROUPS[step["name"]]] += (finished - started).total_seconds()
        parts["orchestrator"] = max(0.0, total - sum(parts.values()))
        parts["total"] = total
        client.post(f"/v1/services/{approved['service_id']}/decommission", headers=headers(tenant["requester"]))
        return parts


def report(label: str, runs: list[dict[str, float]], wall: float) -> None:
    mean = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
    share = mean["orchestrator"] / mean["total"] if mean["total"] else 0.0
    print(
        f"{label}: wall {wall:.1f} s; per order (mean) total {mean['total']:.1f} s = orchestrator "
        f"{mean['orchestrator']:.1f} s + cloud {mean['cloud']:.1f} s + ansible {mean['ansible']:.1f} s + "
        f"health {mean['health']:.1f} s; orchestrator share {share:.1%} (target < 10%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clouds-yaml", type=Path, default=ROOT / ".tonle" / "devcloud" / "clouds.yaml")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument(
        "--only", choices=["web-hosting", "email"], help="measure one offering (web hosting: 1 order, then 10)"
    )
    args = parser.parse_args()
    if not args.clouds_yaml.exists():
        sys.exit(f"no {args.clouds_yaml}: start the local data centre first (make devcloud-up)")
    data_dir = ROOT / ".tonle" / "bench-provision"
    data_dir.mkdir(parents=True, exist_ok=True)
    url, tenants, operator = prepare(data_dir, ministries=5)
    figures: list[tuple[str, list[dict[str, float]], float]] = []
    with api_and_worker(url, args.clouds_yaml, TONLE_WORKER_CONCURRENCY="10") as base:
        if args.only in (None, "web-hosting"):
            started = time.monotonic()
            single = [provision(base, tenants[0], operator, args.timeout)]
            figures.append(("web hosting, 1 order", single, time.monotonic() - started))
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=10) as pool:
                batch = list(pool.map(lambda i: provision(base, tenants[i % 5], operator, args.timeout), range(10)))
            figures.append(("web hosting, 10 orders from 5 ministries at once", batch, time.monotonic() - started))
        if args.only in (None, "email"):
            started = time.monotonic()
            mail = [provision(base, tenants[1], operator, args.timeout, offering="email")]
            figures.append(("e-mail, 1 order", mail, time.monotonic() - started))
    for label, runs, wall in figures:
        report(label, runs, wall)


if __name__ == "__main__":
    main()
