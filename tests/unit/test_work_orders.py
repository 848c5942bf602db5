"""The printable work order: every value a ministry or technician typed is escaped, and HTML is
served only to a client that asks for it ahead of JSON."""

import pytest

from orchestrator.dcim.work_orders import render_html
from portal_api.routers.colocation import _wants_html

pytestmark = pytest.mark.unit

HOSTILE = '<script>alert("x")</script>'


def test_every_value_on_the_page_is_escaped() -> None:
    order = {
        "kind": "installation",
        "service": {"id": "s-1", "name": HOSTILE},
        "ministry": {"code": "health", "name": f"Health {HOSTILE}"},
        "contact": {"name": f"Sokha {HOSTILE}", "phone": "+855 & <b>"},
        "subnet_cidr": "10.100.7.0/24",
        "devices": [
            {
                "name": "app-1",
                "model": HOSTILE,
                "site": "primary",
                "room": "hall-a",
                "rack": "P-A01",
                "position": 12,
                "height": 2,
                "face": "front",
                "power_feeds": [{"name": "P-A01-A", "psu": "PSU1"}, {"name": HOSTILE, "psu": "PSU2"}],
                "patch_ports": ["port-1", HOSTILE],
                "ip_addresses": ["10.100.7.11"],
                "gateway": "10.100.7.1",
                "serial": HOSTILE,
                "status": "reserved",
            }
        ],
    }
    page = render_html(order)
    assert "<script>" not in page and "<b>" not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 7
    assert "+855 &amp; &lt;b&gt;" in page
    assert "P-A01" in page and "10.100.7.11" in page and "<td>12</td>" in page
    assert page.startswith("<!DOCTYPE html>") and "Installation work order" in page


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("text/html", True),
        ("application/json", False),
        ("application/json, text/html", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_html_only_when_asked_for_first(accept: str, html: bool) -> None:
    assert _wants_html(accept) is html
