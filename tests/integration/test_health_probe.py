"""The HTTPS health probe against a real TLS server on loopback, with a certificate from the
internal CA (issued by the real code; only the CA lives in memory instead of the database)."""

import http.server
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.health.https import HttpsProbe, probe_from, probe_once, wait_until_healthy
from orchestrator.pki.issue import KeyAndCert, expires_within, names_of, new_ca, server_certificate
from orchestrator.ports import ProgressEvent

pytestmark = pytest.mark.integration

DOMAIN = "portal.health.gov.example"


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"<h1>{self.headers['Host']}</h1>".encode()
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def ca() -> KeyAndCert:
    return new_ca("test CA")


@pytest.fixture(scope="module")
def sni_names() -> list[str | None]:
    """The server name each TLS handshake with `tls_server` carried (None: no SNI sent)."""
    return []


@pytest.fixture(scope="module")
def tls_server(ca: KeyAndCert, tmp_path_factory: pytest.TempPathFactory, sni_names: list[str | None]) -> Iterator[str]:
    # The certificate also covers the address, so only the recorded SNI shows which name was sent.
    leaf = server_certificate(ca, [DOMAIN, "127.0.0.1"])
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_text(leaf.cert_pem)
    (folder / "key.pem").write_text(leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    context.sni_callback = lambda _socket, name, _context: sni_names.append(name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_server_certificate_names_and_lifetime(ca: KeyAndCert) -> None:
    leaf = server_certificate(ca, [DOMAIN, "www.health.gov.example", "172.24.4.20"])
    assert names_of(leaf.cert_pem) == {DOMAIN, "www.health.gov.example", "172.24.4.20"}
    assert not expires_within(leaf.cert_pem, timedelta(days=300))


def test_probe_passes_through_the_internal_ca_with_sni(
    ca: KeyAndCert, tls_server: str, sni_names: list[str | None]
) -> None:
    sni_names.clear()
    passed, seen = probe_once(HttpsProbe(address=tls_server, hostname=DOMAIN, expect_text=DOMAIN), ca_pem=ca.cert_pem)
    assert passed, seen  # expect_text: the page echoes the Host header it got
    assert sni_names == [DOMAIN], "the handshake names the service, not the address it connects to"


def test_probe_fails_when_the_ca_is_not_trusted(tls_server: str) -> None:
    passed, seen = probe_once(HttpsProbe(address=tls_server, hostname=DOMAIN), ca_pem=new_ca("other").cert_pem)
    assert not passed and "CERTIFICATE_VERIFY_FAILED" in seen


def test_probe_fails_for_a_name_the_certificate_does_not_cover(ca: KeyAndCert, tls_server: str) -> None:
    passed, seen = probe_once(HttpsProbe(address=tls_server, hostname="other.gov.example"), ca_pem=ca.cert_pem)
    assert not passed and "other.gov.example" in seen


def test_probe_checks_status_and_content(ca: KeyAndCert, tls_server: str) -> None:
    passed, seen = probe_once(HttpsProbe(address=tls_server, hostname=DOMAIN, path="/missing"), ca_pem=ca.cert_pem)
    assert not passed and seen.startswith("HTTP 404")
    passed, seen = probe_once(
        HttpsProbe(address=tls_server, hostname=DOMAIN, expect_text="WordPress"), ca_pem=ca.cert_pem
    )
    assert not passed and "lacks 'WordPress'" in seen


def test_waiting_reports_each_change_and_gives_up_at_the_deadline(ca: KeyAndCert) -> None:
    events: list[ProgressEvent] = []
    slept: list[float] = []
    ok = wait_until_healthy(
        HttpsProbe(address="127.0.0.1:1", hostname=DOMAIN),
        ca_pem=ca.cert_pem,
        deadline_seconds=5,
        on_event=events.append,
        sleep=slept.append,
        clock=lambda: sum(slept),  # time passes only while the check sleeps
    )
    assert not ok and len(events) == 1 and events[0].level == "warning"
    assert slept and sum(slept) <= 5


def test_probe_from_offering_spec_and_endpoints() -> None:
    probe = probe_from({"path": "/wp-login.php"}, {"ip": "172.24.4.20", "hostname": DOMAIN})
    assert probe == HttpsProbe(address="172.24.4.20", hostname=DOMAIN, path="/wp-login.php")
    with pytest.raises(ValueError, match="no endpoint"):
        probe_from({}, {"url": "https://x"})
