"""Wall time from approval to `active` on the local data centre: one order, then 10 orders from 5
ministries at once, of web hosting, CMS or an e-mail domain (`--offering`), on the base image, on
the offering's baked image, or both (`--images`); each split into orchestrator, cloud (engine),
Ansible and health-check time from its operation's step timings. The last lines are the
figures and their ratios to the targets (one web-hosting order in 30 s; 10 at once under 120 s).

`--images baked` first builds the offering's image with `tonle images build --wait` (the image
pipeline) against the bench's own API, then checks each order booted it (its operation says
which image and why). Without the pipeline in this checkout it says so and measures the base
image only.

Needs the local data centre (`make devcloud-up`); starts its own embedded PostgreSQL database,
API and worker processes (embedded engine, Ansible), and decommissions what it built.

    .venv/bin/python bench/provision.py --offering web-hosting --orders 1 --images both
"""

import argparse
import os
import statistics
import subprocess
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
    api_and_worker,
    fresh_database,
    headers,
    order_cms_site,
    order_mail_domain,
    order_web_site,
    seed_tenants,
)

STEP_GROUPS = {"plan": "cloud", "apply": "cloud", "configure": "ansible", "verify": "health"}
IMAGE_ROLES = {"web-hosting": "web", "cms": "cms", "email": "mail"}
TARGET_ONE_WEB_S = 30.0
TARGET_TEN_WALL_S = 120.0


def prepare(data_dir: Path, ministries: int) -> tuple[str, list[dict[str, str]], str, str]:
    """A fresh database with ministries, each with a requester and an approver, an operator and
    an admin (who builds images)."""
    url = fresh_database(data_dir, "provision")
    from orchestrator.database.core import session_scope

    with session_scope() as session:
        tenants, operator, admin = seed_tenants(session, prefix="bench", count=ministries)
    return url, tenants, operator, admin


def build_image(base: str, admin: str, offering: str) -> str | None:
    """`tonle images build --wait` for the offering's image role against this bench's API; the
    reason baked images cannot be measured, or None once a current image is available."""
    role = IMAGE_ROLES[offering]
    env = {**os.environ, "TONLE_API_URL": base, "TONLE_TOKEN": admin}
    command = [sys.executable, "-m", "portal_api.cli", "images"]
    if subprocess.run([*command, "--help"], env=env, capture_output=True, check=False).returncode != 0:
        return "this checkout has no `tonle images` (the image pipeline, issue 14 part C)"
    started = time.monotonic()
    built = subprocess.run(
        [*command, "build", "--role", role, "--wait"], env=env, capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        return f"`tonle images build --role {role}` failed: {(built.stdout + built.stderr).strip()[-500:]}"
    with httpx.Client(base_url=base, timeout=60) as client:
        images = client.get("/v1/images", params={"role": role}, headers=headers(admin)).json()
    current = [image for image in images if image.get("current")]
    if not current:
        return f"`tonle images build --role {role}` ended, but no current {role} image is listed"
    print(f"baked image {current[0]['name']} built in {time.monotonic() - started:.0f} s", flush=True)
    return None


def provision(
    base: str, tenant: dict[str, str], operator: str, timeout: float, *, offering: str = "web-hosting"
) -> dict[str, float]:
    """Order, approve, wait for `active`, decommission; return seconds per part (and, under
    `image`, the image its servers booted as its operation's event says)."""
    domain = f"b{uuid.uuid4().hex[:8]}.{tenant['code']}.gov.example"
    with httpx.Client(base_url=base, timeout=60) as client:
        if offering == "email":
            approved, approved_at = order_mail_domain(client, tenant, operator, domain=domain)
        elif offering == "cms":
            approved, approved_at = order_cms_site(client, tenant, operator, name="bench", domain=domain)
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
        events = client.get(f"/v1/operations/{operation['id']}/events", headers=headers(operator)).json()
        chosen = [e["message"] for e in events if e["type"] == "image.selected"]
        if chosen:
            print(f"  {operation['id']}: {chosen[-1]}", flush=True)
        client.post(f"/v1/services/{approved['service_id']}/decommission", headers=headers(tenant["requester"]))
        return parts


def report(label: str, runs: list[dict[str, float]], wall: float, target: str) -> None:
    mean = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
    share = mean["orchestrator"] / mean["total"] if mean["total"] else 0.0
    print(
        f"{label}: wall {wall:.1f} s; per order (mean) total {mean['total']:.1f} s = orchestrator "
        f"{mean['orchestrator']:.1f} s + cloud {mean['cloud']:.1f} s + ansible {mean['ansible']:.1f} s + "
        f"health {mean['health']:.1f} s; orchestrator share {share:.1%} (target < 10%){target}"
    )


def target_of(offering: str, orders: int, runs: list[dict[str, float]], wall: float) -> str:
    """The ratio to the issue's target where there is one (1.0 = on target, below is better)."""
    if orders == 1 and offering == "web-hosting":
        return f"; ratio to the {TARGET_ONE_WEB_S:.0f} s target {runs[0]['total'] / TARGET_ONE_WEB_S:.2f}"
    if orders == 10:
        return f"; wall ratio to the {TARGET_TEN_WALL_S:.0f} s target {wall / TARGET_TEN_WALL_S:.2f}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clouds-yaml", type=Path, default=ROOT / ".tonle" / "devcloud" / "clouds.yaml")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--offering", choices=sorted(IMAGE_ROLES), default="web-hosting")
    parser.add_argument(
        "--orders",
        choices=["1", "10", "both"],
        default="both",
        help="one order, ten at once from 5 ministries, or both",
    )
    parser.add_argument(
        "--images", choices=["base", "baked", "both"], default="base", help="the base image, the baked one, or both"
    )
    args = parser.parse_args()
    if not args.clouds_yaml.exists():
        sys.exit(f"no {args.clouds_yaml}: start the local data centre first (make devcloud-up)")
    data_dir = ROOT / ".tonle" / "bench-provision"
    data_dir.mkdir(parents=True, exist_ok=True)
    url, tenants, operator, admin = prepare(data_dir, ministries=5)
    counts = [1, 10] if args.orders == "both" else [int(args.orders)]
    figures: list[tuple[str, list[dict[str, float]], float, str]] = []
    notes: list[str] = []
    with api_and_worker(url, args.clouds_yaml, TONLE_WORKER_CONCURRENCY="10") as base:
        # The base image first: no baked image exists yet in this bench's fresh database.
        for images in ["base", "baked"] if args.images == "both" else [args.images]:
            if images == "baked":
                reason = build_image(base, admin, args.offering)
                if reason is not None:
                    notes.append(f"baked image not measured: {reason}; measured on the base image only")
                    print(notes[-1], flush=True)
                    if args.images == "both":
                        continue
                    images = "base (baked unavailable)"
            for count in counts:
                started = time.monotonic()
                with ThreadPoolExecutor(max_workers=count) as pool:
                    runs = list(
                        pool.map(
                            lambda i: provision(base, tenants[i % 5], operator, args.timeout, offering=args.offering),
                            range(count),
                        )
                    )
                wall = time.monotonic() - started
                who = "1 order" if count == 1 else f"{count} orders from 5 ministries at once"
                label = f"{args.offering}, {images} image, {who}"
                figures.append((label, runs, wall, target_of(args.offering, count, runs, wall)))
    for note in notes:
        print(note)
    for label, runs, wall, target in figures:
        report(label, runs, wall, target)


if __name__ == "__main__":
    main()
