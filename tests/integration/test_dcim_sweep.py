"""Reservations no service holds are given back (orchestrator/dcim/sweep.py): on the real
PostgreSQL with real services made through the API, against the in-memory DCIM double
(tests/integration/dcim_double.py, a double at the DCIM boundary): a live service's reservation
stays, a retired service's and a never-committed service's go, one Tonle did not make stays."""

import logging
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from orchestrator.bootstrap import noop_adapters
from orchestrator.config import get_settings
from orchestrator.database.core import session_scope
from orchestrator.dcim import connection as dcim_connection
from orchestrator.dcim import sweep
from orchestrator.jobs import queue
from orchestrator.ports import UnitSpan
from orchestrator.services.models import Service, ServiceStatus
from tests.conftest import Platform, Tenant, order_and_approve, order_body
from tests.integration.dcim_double import DcimDouble, small_site

pytestmark = pytest.mark.integration


def test_reservations_of_no_live_service_are_released(client: httpx.Client, tenant: Tenant, platform: Platform) -> None:
    live = order_and_approve(client, tenant, platform)["service_id"]
    other = order_body(
        tenant, parameters={"name": "intranet", "domain": f"intranet.{tenant.dns_suffix}", "admin_email": "a@b.example"}
    )
    retired = order_and_approve(client, tenant, platform, other)["service_id"]
    with session_scope() as session:
        service = session.get(Service, uuid.UUID(retired))
        assert service is not None
        service.status = ServiceStatus.retired
        session.add(service)
        session.commit()
    dcim = DcimDouble(small_site(2))
    refs = {"live": live, "retired": retired, "never committed": str(uuid.uuid4()), "operator's own": "cab-42"}
    made = {
        label: dcim.reserve(
            rack_id="primary-r1",
            span=UnitSpan(1 + 2 * i, 1),
            ministry_code=tenant.code,
            order_ref=ref,
            device_name=f"{label}-1",
            feed_id="primary-r1-A",
            draw_w=100,
            weight_kg=10,
        )
        for i, (label, ref) in enumerate(refs.items())
    }

    with session_scope() as session:
        released = sweep.release_orphans(session=session, dcim=dcim, site="primary")
        session.commit()

    assert sorted(r.order_ref for r in released) == sorted([refs["retired"], refs["never committed"]])
    assert {r.id for r in dcim.reservations()} == {made["live"].id, made["operator's own"].id}


def test_the_periodic_sweep_waits_quietly_for_a_dcim_not_written_yet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`make run` starts the worker minutes before the local data centre writes the DCIM's
    address: the sweep skips with one line, not a failed job and a traceback every 15 minutes."""
    settings = get_settings().model_copy(update={"dcim_url": None, "dcim_config": tmp_path / "dcim.json"})
    queue.set_adapters(replace(noop_adapters(settings), dcim=dcim_connection.for_worker(settings)))
    try:
        with caplog.at_level(logging.INFO, logger="tonle.queue"):
            queue.release_orphan_reservations(timestamp=0)
        assert "the DCIM's address is not known yet" in caplog.text

        (tmp_path / "dcim.json").write_text('{"url": "http://127.0.0.1:9", "token": "unused"}')
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tonle.queue"):
            queue.release_orphan_reservations(timestamp=0)
        assert "orphan sweep skipped until the next one" in caplog.text
        assert "cannot be reached" in caplog.text
    finally:
        queue.set_adapters(None)
