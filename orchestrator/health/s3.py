"""S3 health check: with the credentials the ministry is handed, at the endpoint it is handed,
a small object is written into the service's bucket, read back byte for byte, and deleted.

It proves what a ministry's backup tool needs (the endpoint answers, the keys sign requests the
site accepts, the bucket exists and the keys may write and read it), not merely that the bucket
exists: the orchestrator's own (project-wide) credentials are never used here.
"""

import secrets as random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.health.polling import poll_until_passed
from orchestrator.ports import EventSink, StepFailed

#: Objects the check writes live under this prefix, so a ministry can tell them from its own.
PROBE_PREFIX = ".tonle-health/"


@dataclass(frozen=True)
class S3Probe:
    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str = field(repr=False)


def probe_from(endpoints: dict[str, Any], credentials: dict[str, Any]) -> S3Probe:
    """The probe a service's endpoints and credentials describe; a missing one is named."""
    found = {
        "endpoints.s3_endpoint": endpoints.get("s3_endpoint"),
        "endpoints.bucket": endpoints.get("bucket"),
        "credentials.s3_access_key_id": credentials.get("s3_access_key_id"),
        "credentials.s3_secret_access_key": credentials.get("s3_secret_access_key"),
    }
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise ValueError(f"the service has no {', '.join(missing)} to check its bucket with")
    return S3Probe(
        endpoint=str(found["endpoints.s3_endpoint"]),
        bucket=str(found["endpoints.bucket"]),
        region=str(endpoints.get("s3_region") or "us-east-1"),
        access_key=str(found["credentials.s3_access_key_id"]),
        secret_key=str(found["credentials.s3_secret_access_key"]),
    )


def probe_once(probe: S3Probe, *, timeout: float = 10.0) -> tuple[bool, str]:
    """One write, read-back and delete; returns (passed, what was seen)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=probe.endpoint,
        region_name=probe.region,
        aws_access_key_id=probe.access_key,
        aws_secret_access_key=probe.secret_key,
        # Path-style: a site's endpoint is one host name, not a wildcard per bucket. No retries
        # inside boto3: the loop below retries, and reports each outcome.
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1},
        ),
    )
    key = f"{PROBE_PREFIX}{random.token_hex(8)}"
    body = random.token_bytes(64)
    stage = "write"
    try:
        client.put_object(Bucket=probe.bucket, Key=key, Body=body)
        stage = "read"
        read = client.get_object(Bucket=probe.bucket, Key=key)["Body"].read()
        stage = "delete"
        client.delete_object(Bucket=probe.bucket, Key=key)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return False, f"{stage} refused: {error.get('Code', '?')} {error.get('Message', '')}".rstrip()
    except BotoCoreError as exc:
        return False, f"{stage} failed: {type(exc).__name__}: {exc}"
    if read != body:
        return False, f"read back {len(read)} bytes that differ from the {len(body)} written"
    return True, f"wrote, read back and deleted {len(body)} bytes"


def wait_until_healthy(
    probe: S3Probe,
    *,
    deadline_seconds: float,
    on_event: EventSink,
    attempt: Callable[[S3Probe], tuple[bool, str]] = probe_once,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Probe until it passes or the deadline passes, reporting each change of outcome: Keystone
    may take a moment to accept a new EC2 credential, and a site's S3 API to answer."""
    where = f"{probe.endpoint}/{probe.bucket}"
    return poll_until_passed(
        lambda: attempt(probe),
        describe=lambda seen: f"s3 {where}: {seen}",
        data={"endpoint": probe.endpoint, "bucket": probe.bucket},
        deadline_seconds=deadline_seconds,
        on_event=on_event,
        sleep=sleep,
        clock=clock,
    )


def check_s3(
    spec: dict[str, Any],
    outputs: dict[str, Any],
    parameters: dict[str, Any],
    secret_vars: dict[str, Any],
    on_event: EventSink,
    deadline: float,
) -> bool:
    try:
        probe = probe_from(dict(outputs.get("endpoints") or {}), dict(outputs.get("credentials") or {}))
    except ValueError as exc:
        raise StepFailed(str(exc)) from exc
    return wait_until_healthy(probe, deadline_seconds=deadline, on_event=on_event)
