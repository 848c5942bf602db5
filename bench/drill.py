"""RTO of a DR drill for a web-hosting service holding 100 MB of content, on the local data centre.

Orders a web site, deploys an archive of `--content-mb` MB (incompressible, so the backup and the
restore move all of it), backs it up, then drills: the copy at the DR site is built, configured,
restored and checked. The drill's own report gives RTO and RPO; its steps' timings split the RTO
into provision (the copy's stack), configure (the offering's playbooks on the copy), restore-data
(restic restore) and verify (health and data checks). The last lines are the figures, with the
tier's RTO target and the anchor (Azure Site Recovery's RTO SLA, two hours) as ratios.

Needs the local data centre (`make devcloud-up`); starts its own embedded PostgreSQL database,
API and worker processes, and decommissions what it built.
"""

import argparse
import io
import os
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.provision import prepare  # noqa: E402
from bench.setup import api_and_worker, headers, order_web_site  # noqa: E402

ANCHOR_RTO_SECONDS = 2 * 3600  # Azure Site Recovery's SLA: RTO up to two hours
# Which part of the RTO each of the drill's steps is (orchestrator/workflows/drill.py); the steps
# after the first passing health check (cleanup, report) are outside the RTO and reported apart.
PARTS = {
    "prepare": "orchestrator",
    "build_copy": "provision",
    "configure_copy": "configure",
    "restore_data": "restore-data",
    "check_data": "verify",
    "check_health": "verify",
}
AFTER_RTO = ("destroy_copy", "verify_cleanup", "report")


def follow(client: httpx.Client, token: str, operation_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        operation: dict[str, Any] = client.get(f"/v1/operations/{operation_id}", headers=headers(token)).json()
        if operation["status"] in ("succeeded", "failed"):
            if operation["status"] != "succeeded":
                failed = f"{operation['failed_step']}: {operation['error']}"
                raise RuntimeError(f"operation {operation_id} failed at {failed}")
            return operation
        if time.monotonic() > deadline:
            raise RuntimeError(f"operation {operation_id} still {operation['status']} after {timeout} s")
        time.sleep(1)


def site_archive(content_mb: int) -> bytes:
    """A site: an index page and `content_mb` MB of random files (random: nothing compresses)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        page = b"<html><body><h1>Drill benchmark</h1></body></html>\n"
        info = tarfile.TarInfo("index.html")
        info.size = len(page)
        archive.addfile(info, io.BytesIO(page))
        for index in range(content_mb):
            blob = os.urandom(2**20)
            info = tarfile.TarInfo(f"media/blob-{index:04d}.bin")
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


def seconds(step: dict[str, Any]) -> float:
    if not step.get("started_at") or not step.get("finished_at"):
        return 0.0
    started, finished = (datetime.fromisoformat(step[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def drill_once(base: str, tenant: dict[str, str], operator: str, content_mb: int, timeout: float) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=600) as client:
        approved, _ = order_web_site(
            client, tenant, operator, name="drillbench", domain=f"drill.{tenant['code']}.gov.example"
        )
        follow(client, operator, approved["operation_id"], timeout)
        service_id = approved["service_id"]
        try:
            archive = site_archive(content_mb)
            deployed = client.post(
                f"/v1/services/{service_id}/actions/deploy-content",
                content=archive,
                headers={**headers(tenant["requester"]), "Content-Type": "application/gzip"},
            )
            deployed.raise_for_status()
            follow(client, operator, deployed.json()["id"], timeout)
            backup = client.post(f"/v1/services/{service_id}/actions/backup", headers=headers(tenant["requester"]))
            backup.raise_for_status()
            follow(client, operator, backup.json()["id"], timeout)
            drill = client.post(f"/v1/services/{service_id}/actions/drill", headers=headers(tenant["requester"]))
            drill.raise_for_status()
            follow(client, operator, drill.json()["id"], timeout)
            report: dict[str, Any] = client.get(
                f"/v1/operations/{drill.json()['id']}/report", headers=headers(tenant["requester"])
            ).json()
            return {**report, "archive_bytes": len(archive)}
        finally:
            client.post(f"/v1/services/{service_id}/decommission", headers=headers(tenant["requester"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clouds-yaml", type=Path, default=ROOT / ".tonle" / "devcloud" / "clouds.yaml")
    parser.add_argument("--content-mb", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if not args.clouds_yaml.exists():
        sys.exit(f"no {args.clouds_yaml}: start the local data centre first (make devcloud-up)")
    data_dir = ROOT / ".tonle" / "bench-drill"
    data_dir.mkdir(parents=True, exist_ok=True)
    url, tenants, operator, _admin = prepare(data_dir, ministries=1)
    upload_limit = str((args.content_mb + 16) * 2**20)
    with api_and_worker(url, args.clouds_yaml, TONLE_UPLOAD_MAX_BYTES=upload_limit) as base:
        report = drill_once(base, tenants[0], operator, args.content_mb, args.timeout)

    parts = dict.fromkeys(["provision", "configure", "restore-data", "verify", "orchestrator"], 0.0)
    after = 0.0
    for step in report["steps"]:
        if step["name"] in AFTER_RTO:
            after += seconds(step)
        else:
            parts[PARTS.get(step["name"], "orchestrator")] += seconds(step)
    rto, target = float(report["rto_seconds"]), float(report["target_rto_seconds"])
    stepped = sum(v for k, v in parts.items() if k != "orchestrator")
    parts["orchestrator"] = max(0.0, rto - stepped)  # queueing and time between steps
    archive_mib = report["archive_bytes"] / 2**20
    print(f"content: {args.content_mb} MB ({archive_mib:.1f} MiB archive); passed: {report['passed']}")
    print(f"RPO {float(report['rpo_seconds']):.1f} s (target {float(report['target_rpo_seconds']):.0f} s)")
    print("RTO split: " + ", ".join(f"{name} {value:.1f} s" for name, value in parts.items()))
    print(f"after the RTO (cleanup, report): {after:.1f} s; cleanup verified: {report['cleanup_verified']}")
    print(f"RTO {rto:.1f} s; tier target {target:.0f} s: ratio {rto / target:.3f}")
    print(f"RTO {rto:.1f} s; anchor {ANCHOR_RTO_SECONDS} s (two hours): ratio {rto / ANCHOR_RTO_SECONDS:.3f}")


if __name__ == "__main__":
    main()
