"""A worker runs as many operations at once as its concurrency says, and is ready before its
first job.

The engine is the no-op engine with a delay per call (a test double at the cloud boundary):
these tests are about the worker's slots, not about what a step builds.
"""

import os
import subprocess
import sys
import time
import types
from datetime import datetime
from typing import Any

import httpx
import pytest

from orchestrator.jobs.worker import load_lazy_modules
from tests.conftest import Database, Platform, Tenant, order_and_approve, order_body

pytestmark = pytest.mark.integration

ORDERS = 10


def run_interval(operation: dict[str, Any]) -> tuple[datetime, datetime]:
    """From its first step's start to its last step's end."""
    steps = [s for s in operation["steps"] if s["started_at"] and s["finished_at"]]
    return (
        min(datetime.fromisoformat(s["started_at"]) for s in steps),
        max(datetime.fromisoformat(s["finished_at"]) for s in steps),
    )


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals that share one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def test_a_worker_of_concurrency_ten_runs_ten_operations_at_once(
    client: httpx.Client, tenant: Tenant, platform: Platform, database: Database
) -> None:
    # Ten approved orders wait in the queue before the worker starts, so it can take them all at
    # once; each engine call takes 3 s. asyncio's default thread pool (6 threads on 2 cores)
    # used to run six of them and leave four waiting for a thread.
    approved = [
        order_and_approve(
            client,
            tenant,
            platform,
            order_body(
                tenant,
                parameters={
                    "name": f"site{index}",
                    "domain": f"site{index}.{tenant.dns_suffix}",
                    "admin_email": f"web@{tenant.dns_suffix}",
                },
            ),
        )
        for index in range(ORDERS)
    ]
    env = {**os.environ, "TONLE_DATABASE_URL": database.url, "TONLE_NOOP_STEP_SECONDS": "3"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "portal_api.cli", "worker", "--concurrency", str(ORDERS)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        operations: list[dict[str, Any]] = []
        while True:
            operations = [
                client.get(f"/v1/operations/{a['operation_id']}", headers=tenant.requester.headers).json()
                for a in approved
            ]
            if all(o["status"] in ("succeeded", "failed") for o in operations):
                break
            assert time.monotonic() < deadline, [o["status"] for o in operations]
            assert worker.poll() is None, "the worker stopped"
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert [o["status"] for o in operations] == ["succeeded"] * ORDERS
    assert most_at_once([run_interval(o) for o in operations]) == ORDERS


def test_the_provider_sdk_is_loaded_before_operations_run_in_parallel() -> None:
    # Python 3.11's lazy loader is not thread-safe: two stack programs importing a provider module
    # at once could see it half loaded. After the worker's warm-up, no module of it is lazy.
    import importlib.util

    import pulumi_openstack
    from pulumi._utils import _LazyModule

    load_lazy_modules()
    modules = [getattr(pulumi_openstack, name) for name in dir(pulumi_openstack)]
    provider_modules = [
        m for m in modules if isinstance(m, types.ModuleType) and m.__name__.startswith("pulumi_openstack.")
    ]
    assert provider_modules
    lazy = (_LazyModule, importlib.util._LazyModule)  # type: ignore[attr-defined]
    assert not [m.__name__ for m in provider_modules if isinstance(m, lazy)]
    assert callable(pulumi_openstack.images.get_image_output)
