"""The `s3` health check's own logic: what it needs from the service, how it reports and when it
gives up. That it passes against a real bucket with a ministry's keys is shown by the cloud tier
(tests/cloud/test_dr_backup.py), against the local data centre's Swift S3 API."""

import socket
from typing import Any

import pytest

from orchestrator.health.checker import KINDS, ServiceHealthChecker
from orchestrator.health.s3 import S3Probe, probe_from, probe_once, wait_until_healthy
from orchestrator.ports import ProgressEvent, StepFailed

pytestmark = pytest.mark.unit

SECRET = "never-in-an-event-0123456789"
ENDPOINTS = {"bucket": "tonle-backup-x", "s3_endpoint": "http://192.0.2.1:9", "s3_region": "us-east-1"}
CREDENTIALS = {"s3_access_key_id": "AK", "s3_secret_access_key": SECRET}


def test_s3_is_a_kind_the_checker_runs() -> None:
    assert "s3" in KINDS


@pytest.mark.parametrize(
    ("endpoints", "credentials", "named"),
    [
        ({**ENDPOINTS, "s3_endpoint": ""}, CREDENTIALS, "endpoints.s3_endpoint"),
        ({k: v for k, v in ENDPOINTS.items() if k != "bucket"}, CREDENTIALS, "endpoints.bucket"),
        (ENDPOINTS, {}, "credentials.s3_access_key_id, credentials.s3_secret_access_key"),
    ],
)
def test_a_service_without_what_the_check_needs_fails_naming_it_and_claims_nothing(
    endpoints: dict[str, Any], credentials: dict[str, Any], named: str
) -> None:
    events: list[ProgressEvent] = []
    checker = ServiceHealthChecker(deadline_seconds=1)
    with pytest.raises(StepFailed, match=named):
        checker.check({"kind": "s3"}, {"endpoints": endpoints, "credentials": credentials}, {}, {}, events.append)
    assert events == []


def test_the_probe_keeps_the_secret_out_of_its_repr() -> None:
    probe = probe_from(ENDPOINTS, CREDENTIALS)
    assert probe.secret_key == SECRET and SECRET not in repr(probe)
    assert probe.region == "us-east-1"


def closed_port() -> int:
    # A port just bound and released on loopback: nothing listens there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_endpoint_that_does_not_answer_fails_the_write_and_says_so() -> None:
    probe = S3Probe(
        endpoint=f"http://127.0.0.1:{closed_port()}", bucket="b", region="us-east-1", access_key="AK", secret_key=SECRET
    )
    passed, seen = probe_once(probe, timeout=2)
    assert not passed
    assert seen.startswith("write failed: EndpointConnectionError")
    assert SECRET not in seen


def test_it_retries_until_the_deadline_reporting_each_change_and_never_the_secret() -> None:
    # A scripted S3 (a double of the site, which is not what this test is about): refuses twice
    # the same way, then differently, forever; the clock advances by each sleep.
    outcomes = iter([(False, "write refused: InvalidAccessKeyId")] * 2 + [(False, "read refused: AccessDenied")] * 99)
    now = [0.0]
    events: list[ProgressEvent] = []
    probe = probe_from(ENDPOINTS, CREDENTIALS)
    passed = wait_until_healthy(
        probe,
        deadline_seconds=20,
        on_event=events.append,
        attempt=lambda _: next(outcomes),
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        clock=lambda: now[0],
    )
    assert not passed
    assert now[0] <= 20
    assert [event.message.rsplit(": ", 1)[-1] for event in events] == ["InvalidAccessKeyId", "AccessDenied"]
    assert all(event.level == "warning" and event.data["passed"] is False for event in events)
    assert all(SECRET not in event.message and SECRET not in str(event.data) for event in events)


def test_it_passes_as_soon_as_a_round_trip_works() -> None:
    outcomes = iter([(False, "write refused: InvalidAccessKeyId"), (True, "wrote, read back and deleted 64 bytes")])
    events: list[ProgressEvent] = []
    passed = wait_until_healthy(
        probe_from(ENDPOINTS, CREDENTIALS),
        deadline_seconds=60,
        on_event=events.append,
        attempt=lambda _: next(outcomes),
        sleep=lambda _: None,
    )
    assert passed
    assert events[-1].level == "info" and events[-1].data == {
        "passed": True,
        "endpoint": ENDPOINTS["s3_endpoint"],
        "bucket": ENDPOINTS["bucket"],
    }
