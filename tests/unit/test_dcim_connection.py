"""Which DCIM the orchestrator talks to (settings or the config file, found when it appears), and
a DCIM that is down or refuses said as `Unavailable` (503) naming what was asked: against a real
HTTP server on loopback standing in for Nautobot (a double at the network boundary, named so)."""

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.dcim import connection
from orchestrator.errors import Conflict, Unavailable

pytestmark = pytest.mark.unit


class RefusingNautobot(http.server.BaseHTTPRequestHandler):
    """Answers every API call as Nautobot answers a request it refuses."""

    def do_GET(self) -> None:
        body = json.dumps({"detail": "Invalid filter <script>"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingNautobot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_a_dcim_co_location_is_refused_saying_how_to_configure_one() -> None:
    settings = Settings(dcim_url=None, dcim_config=None)
    assert connection.connect(settings) is None and connection.for_worker(settings) is None
    with pytest.raises(Conflict, match="TONLE_DCIM_URL"):
        connection.require(settings)


def test_the_config_file_is_read_when_it_appears(tmp_path: Path) -> None:
    config = tmp_path / "dcim.json"
    settings = Settings(dcim_url=None, dcim_config=config)
    worker_side = connection.for_worker(settings)
    assert worker_side is not None and connection.connect(settings) is None
    with pytest.raises(Conflict):
        worker_side.racks()
    config.write_text(json.dumps({"url": f"http://127.0.0.1:{closed_port()}", "token": "t"}))
    assert connection.connect(settings) is not None
    with pytest.raises(Unavailable, match=r"cannot be reached \(racks\)"):
        worker_side.racks()


def test_a_dcim_that_is_down_is_unavailable_naming_the_call() -> None:
    dcim = connection.require(Settings(dcim_url=f"http://127.0.0.1:{closed_port()}", dcim_token="t"))
    with pytest.raises(Unavailable, match=r"cannot be reached \(reservations\)"):
        dcim.reservations(order_ref="x")


def test_a_refusal_is_unavailable_with_the_dcims_reason(refusing_url: str) -> None:
    dcim = connection.require(Settings(dcim_url=refusing_url, dcim_token="t"))
    with pytest.raises(Unavailable, match=r"refused racks: .*Invalid filter"):
        dcim.racks()
