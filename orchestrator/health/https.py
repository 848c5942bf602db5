"""HTTPS health check: the page answers over TLS, trusted through the internal CA, at the
service's public address under its own name, with the expected status and content."""

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from orchestrator.health.polling import poll_until_passed
from orchestrator.ports import EventSink

log = logging.getLogger("tonle.health")


@dataclass(frozen=True)
class HttpsProbe:
    address: str  # IP the service answers on (its floating IP)
    hostname: str  # the name it serves (SNI, Host header, certificate)
    path: str = "/"
    expect_status: int = 200
    expect_text: str | None = None


def probe_once(probe: HttpsProbe, *, ca_pem: str | None, timeout: float = 10.0) -> tuple[bool, str]:
    """One attempt; returns (passed, what was seen)."""
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    url = f"https://{probe.address}{probe.path}"
    try:
        with httpx.Client(verify=context, timeout=timeout, follow_redirects=False) as client:
            response = client.get(url, headers={"Host": probe.hostname}, extensions={"sni_hostname": probe.hostname})
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.status_code != probe.expect_status:
        return False, f"HTTP {response.status_code} (expected {probe.expect_status})"
    if probe.expect_text and probe.expect_text not in response.text:
        return False, f"HTTP {response.status_code} but the page lacks {probe.expect_text!r}"
    return True, f"HTTP {response.status_code}, {len(response.content)} bytes"


def wait_until_healthy(
    probe: HttpsProbe,
    *,
    ca_pem: str | None,
    deadline_seconds: float,
    on_event: EventSink,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Probe until it passes or the deadline passes, reporting each change of outcome."""
    return poll_until_passed(
        lambda: probe_once(probe, ca_pem=ca_pem),
        describe=lambda seen: f"https://{probe.hostname}{probe.path} via {probe.address}: {seen}",
        data={"address": probe.address, "hostname": probe.hostname},
        deadline_seconds=deadline_seconds,
        on_event=on_event,
        sleep=sleep,
        clock=clock,
    )


def probe_from(spec: dict[str, Any], endpoints: dict[str, Any]) -> HttpsProbe:
    """The probe an offering's `health_check` and a service's endpoints describe."""
    address = endpoints.get("public_address") or endpoints.get("ip") or endpoints.get("address")
    hostname = endpoints.get("hostname") or endpoints.get("domain")
    if not address or not hostname:
        raise ValueError(f"the stack outputs no endpoint address/hostname to check (endpoints: {sorted(endpoints)})")
    return HttpsProbe(
        address=str(address),
        hostname=str(hostname),
        path=str(spec.get("path", "/")),
        expect_status=int(spec.get("expect_status", 200)),
        expect_text=spec.get("expect_text"),
    )
