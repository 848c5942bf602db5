"""The embedded engine's server delete asks again when the compute host failed it, and a server
that never goes says what state it is stuck in.

Nova here is a double of openstacksdk's compute proxy (the boundary the handler calls): the real
failure (a compute host that errors or hangs mid-delete) cannot be made on demand on the local
data centre. What is under test is the handler's waiting, not Nova.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from openstack import exceptions

from pulumi_embedded.openstack.resources import compute
from pulumi_embedded.provider import CloudError

pytestmark = pytest.mark.unit


@dataclass
class Server:
    id: str
    status: str = "ACTIVE"
    task_state: str | None = None
    vm_state: str = "active"
    compute_host: str | None = "primary-compute1"
    fault: dict[str, Any] | None = None


@dataclass
class FlakyNova:
    """Each delete request runs the script's next outcome: "fails" (ERROR, task cleared),
    "hangs" (stays deleting) or "deletes"."""

    script: list[str]
    server: Server | None = field(default_factory=lambda: Server("srv-1"))
    delete_requests: int = 0

    def find_server(self, name_or_id: str, ignore_missing: bool = True) -> Server | None:
        return self.server

    def delete_server(self, server: str, force: bool = False) -> None:
        assert self.server is not None
        if self.server.task_state == "deleting":
            return  # Nova: "Instance is already in deleting state, ignoring this request"
        self.delete_requests += 1
        outcome = self.script.pop(0)
        if outcome == "deletes":
            self.server = None
        elif outcome == "fails":
            self.server.status, self.server.task_state = "ERROR", None
            self.server.fault = {"message": "Connection to neutron failed"}
        else:
            self.server.task_state = "deleting"

    def get_server(self, server_id: str) -> Server:
        if self.server is None:
            raise exceptions.NotFoundException(f"No Server found for {server_id}")
        return self.server


@dataclass
class Connection:
    compute: FlakyNova


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "POLL_SECONDS", 0)


def test_a_delete_the_host_failed_is_asked_again_until_the_server_is_gone() -> None:
    nova = FlakyNova(script=["fails", "deletes"])
    compute.Instance().delete(Connection(nova), "srv-1", {})  # type: ignore[arg-type]
    assert nova.server is None
    assert nova.delete_requests == 2


def test_a_server_failing_every_delete_is_reported_with_its_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "WAIT_SECONDS", 0)
    nova = FlakyNova(script=["fails"] * compute.DELETE_ATTEMPTS)
    with pytest.raises(CloudError, match=r"srv-1 still exists .* after 3 delete request\(s\): status ERROR") as err:
        compute.Instance().delete(Connection(nova), "srv-1", {})  # type: ignore[arg-type]
    assert err.value.transient
    assert nova.delete_requests == compute.DELETE_ATTEMPTS


def test_a_hung_delete_is_not_asked_again_and_names_its_task_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "WAIT_SECONDS", 0)
    nova = FlakyNova(script=["hangs"])
    with pytest.raises(CloudError, match="status ACTIVE, task deleting, vm state active, host primary-compute1"):
        compute.Instance().delete(Connection(nova), "srv-1", {})  # type: ignore[arg-type]
    assert nova.delete_requests == 1


def test_a_server_already_gone_is_not_deleted() -> None:
    nova = FlakyNova(script=[], server=None)
    compute.Instance().delete(Connection(nova), "srv-1", {})  # type: ignore[arg-type]
    assert nova.delete_requests == 0
