"""The embedded engine's record-set wait writes a record set Designate left PENDING again.

The DNS service here is a double of openstacksdk's DNS proxy (the boundary the handler calls),
standing in for a Designate whose zone is stuck: the real race needs ten orders at once
(bench/provision.py shows it). What is under test is the handler's waiting, not Designate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from openstack import exceptions

from pulumi_embedded.openstack.resources import dns_identity

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class RecordSetRow:
    id: str
    zone_id: str
    name: str
    records: list[str]
    status: str = "PENDING"
    ttl: int = 300
    description: str = ""


@dataclass
class StuckDesignate:
    """Keeps a record set PENDING until it has been written again `pushes_needed` times."""

    pushes_needed: int
    rows: dict[str, RecordSetRow] = field(default_factory=dict)
    writes: list[list[str]] = field(default_factory=list)

    def create_recordset(self, zone_id: str, *, name: str, type: str, records: list[str], **_: Any) -> RecordSetRow:
        status = "ACTIVE" if self.pushes_needed <= 0 else "PENDING"
        row = RecordSetRow(id="rs-1", zone_id=zone_id, name=name, records=records, status=status)
        self.rows[row.id] = row
        return row

    def get_recordset(self, recordset_id: str, zone_id: str) -> RecordSetRow:
        return self.rows[recordset_id]

    def update_recordset(self, recordset: RecordSetRow, *, records: list[str]) -> RecordSetRow:
        self.writes.append(records)
        self.pushes_needed -= 1
        row = replace(recordset, records=records, status="ACTIVE" if self.pushes_needed <= 0 else "PENDING")
        self.rows[row.id] = row
        return row

    def wait_for_status(self, resource: RecordSetRow, *, status: str, wait: int, **_: Any) -> RecordSetRow:
        row = self.rows[resource.id]
        if row.status != status:
            raise exceptions.ResourceTimeout(f"{row.id} still {row.status} after {wait} s")
        return row


@dataclass
class Connection:
    dns: StuckDesignate


INPUTS = {"zoneId": "zone-1", "name": "www.health.gov.example.", "type": "A", "records": ["172.24.4.60"]}


def test_a_stuck_record_set_is_written_again_unchanged_until_active() -> None:
    designate = StuckDesignate(pushes_needed=2)
    created = dns_identity.RecordSet().create(Connection(designate), dict(INPUTS))  # type: ignore[arg-type]
    assert designate.writes == [["172.24.4.60"], ["172.24.4.60"]]  # the same records each time
    assert created.id == "zone-1/rs-1"
    assert created.outputs["records"] == ["172.24.4.60"]


def test_a_record_set_that_never_settles_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns_identity, "WAIT_SECONDS", 0)
    designate = StuckDesignate(pushes_needed=10**6)
    with pytest.raises(exceptions.ResourceTimeout):
        dns_identity.RecordSet().create(Connection(designate), dict(INPUTS))  # type: ignore[arg-type]
    assert designate.writes == []  # the deadline had passed: no write after it


def test_an_active_record_set_is_not_written_again() -> None:
    designate = StuckDesignate(pushes_needed=0)
    dns_identity.RecordSet().create(Connection(designate), dict(INPUTS))  # type: ignore[arg-type]
    assert designate.writes == []
