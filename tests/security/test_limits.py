"""Resource limits attacked through the API: uploads, event streams, tokens, hostile query values.

An API process of its own runs with small limits (64 KiB uploads, 2 s upload time, 5 streams
per token), so that the attacks take seconds. Raw sockets play the clients that lie or dawdle.
"""

import io
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from orchestrator.auth import service as auth
from orchestrator.config import get_settings
from orchestrator.database.core import session_scope
from orchestrator.operations import uploads
from tests.conftest import Database, Platform, Tenant, active_service, order_and_approve, serving_api

pytestmark = [pytest.mark.security, pytest.mark.integration]

UPLOAD_CAP = 64 * 1024
UPLOAD_SECONDS = 2


@pytest.fixture(scope="module")
def limited_api(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_api(
        database.url,
        tmp_path_factory.mktemp("limited-api"),
        TONLE_UPLOAD_MAX_BYTES=str(UPLOAD_CAP),
        TONLE_UPLOAD_TIMEOUT_SECONDS=str(UPLOAD_SECONDS),
        TONLE_SSE_STREAMS_PER_TOKEN="5",
        TONLE_SSE_POLL_SECONDS="0.2",
    ) as url:
        yield url


@pytest.fixture
def api(limited_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited_api, timeout=30.0) as http:
        yield http


def site_archive() -> bytes:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        page = b"<h1>campaign</h1>"
        info = tarfile.TarInfo("index.html")
        info.size = len(page)
        tar.addfile(info, io.BytesIO(page))
    return archive.getvalue()


def raw_request(url: str, head: str, body_parts: list[bytes] | None = None, pause: float = 0.0) -> socket.socket:
    """Send a request head (and optionally body parts, `pause` seconds apart) on a fresh socket."""
    where = urlsplit(url)
    sock = socket.create_connection((where.hostname or "127.0.0.1", where.port or 80), timeout=15)
    sock.sendall(head.encode())
    for part in body_parts or []:
        time.sleep(pause)
        try:
            sock.sendall(part)
        except OSError:  # the server answered and closed: what a cut-off looks like
            break
    return sock


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


def upload_head(url: str, service_id: str, token: str, length: int | None) -> str:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"POST /v1/services/{service_id}/actions/deploy-content HTTP/1.1\r\n"
        f"Host: {urlsplit(url).netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/gzip\r\n{framing}\r\n"
    )


def uploads_of(database: Database, service_id: str) -> int:
    with psycopg.connect(database.url) as conn:
        row = conn.execute("SELECT count(*) FROM service_upload WHERE service_id = %s", (service_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_uploads_are_capped_early_cut_off_when_slow_and_deleted_when_used(
    api: httpx.Client,
    limited_api: str,
    database: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    platform: Platform,
    work: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service_id = active_service(api, tenant, platform, work)
    token = tenant.requester.token

    # An honest Content-Length over the cap: answered at once, without a byte of the body sent.
    started = time.monotonic()
    with raw_request(limited_api, upload_head(limited_api, service_id, token, 10**9)) as sock:
        status, answer = read_status(sock)
    assert status == 413 and b"application/problem+json" in answer, answer
    assert time.monotonic() - started < 3

    # Another ministry's service: 404, also before the (never sent) body.
    intruder = other_tenant.requester.token
    with raw_request(limited_api, upload_head(limited_api, service_id, intruder, 10**6)) as sock:
        status, answer = read_status(sock)
    assert status == 404, answer

    # No Content-Length (chunked), more than the cap: cut off once the cap is crossed.
    chunk = b"x" * 8192
    framed = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(UPLOAD_CAP // len(chunk) + 4)]
    with raw_request(limited_api, upload_head(limited_api, service_id, token, None), framed) as sock:
        status, answer = read_status(sock)
    assert status == 413, answer

    # A declared size under the cap, sent a few bytes a second: cut off by the time limit.
    started = time.monotonic()
    dribble = [b"x" * 10 for _ in range(int(UPLOAD_SECONDS * 3))]
    head = upload_head(limited_api, service_id, token, 10_000)
    with raw_request(limited_api, head, dribble, pause=0.5) as sock:
        status, answer = read_status(sock)
    assert status == 408, answer
    assert time.monotonic() - started < UPLOAD_SECONDS + 3
    assert uploads_of(database, service_id) == 0, "nothing refused was stored"

    # A file name is a record, never a path or a control sequence.
    for bad in ("../../etc/passwd", "a\nb.tar.gz", "a\\b.tgz"):
        refused = api.post(
            f"/v1/services/{service_id}/actions/deploy-content",
            params={"filename": bad},
            content=site_archive(),
            headers={**tenant.requester.headers, "Content-Type": "application/gzip"},
        )
        assert refused.status_code == 422 and refused.json()["field"] == "filename", refused.text

    # A proper upload is stored until its operation succeeds, then deleted.
    accepted = api.post(
        f"/v1/services/{service_id}/actions/deploy-content",
        params={"filename": "campaign.tar.gz"},
        content=site_archive(),
        headers={**tenant.requester.headers, "Content-Type": "application/gzip"},
    )
    assert accepted.status_code == 202, accepted.text
    assert uploads_of(database, service_id) == 1
    work()
    operation = api.get(f"/v1/operations/{accepted.json()['id']}", headers=tenant.requester.headers).json()
    assert operation["status"] == "succeeded", operation
    assert uploads_of(database, service_id) == 0, "the upload is deleted once its operation has succeeded"

    # A client that sends more than it declared: what it declared is all that is read.
    head = upload_head(limited_api, service_id, token, 100)
    with raw_request(limited_api, head, [b"y" * (UPLOAD_CAP * 3)]) as sock:
        status, answer = read_status(sock)
    assert status == 202, answer
    with psycopg.connect(database.url) as conn:
        sizes = conn.execute("SELECT size FROM service_upload WHERE service_id = %s", (service_id,)).fetchall()
    assert sizes == [(100,)]
    # The retention purge never takes the upload of an operation still to run, however old.
    monkeypatch.setenv("TONLE_UPLOAD_RETENTION_HOURS", "0")
    get_settings.cache_clear()
    try:
        with session_scope() as session:
            uploads.purge_expired(session=session)
            auth.purge_stale_stream_leases(session=session)
            session.commit()
    finally:
        monkeypatch.delenv("TONLE_UPLOAD_RETENTION_HOURS")
        get_settings.cache_clear()
    assert uploads_of(database, service_id) == 1
    work()
    assert uploads_of(database, service_id) == 0


def mint(api: httpx.Client, headers: dict[str, str], name: str = "minted") -> dict[str, str]:
    response = api.post("/v1/tokens", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    issued: dict[str, str] = response.json()
    return issued


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def open_stream(url: str, operation_id: str, token: str) -> tuple[socket.socket, int]:
    head = (
        f"GET /v1/operations/{operation_id}/stream HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    sock = raw_request(url, head)
    status, _ = read_status(sock)
    return sock, status


def held_transactions(database: Database) -> list[str]:
    """Connections idle inside a transaction that has lasted over 2 s: what a stream holding its
    session looks like. (A poll's own transaction lasts milliseconds; 40 streams polling five
    times a second always have a few of those in flight.)"""
    with psycopg.connect(database.url) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND now() - xact_start > interval '2 seconds' "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [str(row[0]) for row in rows]


def test_forty_streams_do_not_starve_the_api_and_each_token_is_capped(
    api: httpx.Client, limited_api: str, database: Database, tenant: Tenant, platform: Platform
) -> None:
    approved = order_and_approve(api, tenant, platform)  # no worker runs: the operation stays queued
    operation_id = approved["operation_id"]
    tokens = [mint(api, tenant.requester.headers, f"stream-{i}")["token"] for i in range(8)]
    with ExitStack() as streams:
        for token in tokens:
            for _ in range(5):
                sock, status = open_stream(limited_api, operation_id, token)
                streams.enter_context(sock)
                assert status == 200
        time.sleep(3.0)  # longer than a held transaction may last
        started = time.monotonic()
        catalog = api.get("/v1/catalog", headers=tenant.requester.headers)
        assert catalog.status_code == 200
        assert time.monotonic() - started < 2.0, "the API still answers at once"
        assert held_transactions(database) == [], "no stream holds a connection between polls"

        sixth, status = open_stream(limited_api, operation_id, tokens[0])
        with sixth:
            assert status == 429, "a token holds at most 5 streams"
    # Closed streams give their places back.
    deadline = time.monotonic() + 10
    while True:
        again, status = open_stream(limited_api, operation_id, tokens[0])
        again.close()
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status == 200


def test_a_stream_ends_when_its_token_is_revoked(
    api: httpx.Client, limited_api: str, tenant: Tenant, platform: Platform
) -> None:
    approved = order_and_approve(api, tenant, platform)
    token = mint(api, tenant.requester.headers, "watcher")
    received: list[bytes] = []
    statuses: list[int] = []
    done = threading.Event()

    def listen() -> None:
        sock, status = open_stream(limited_api, approved["operation_id"], token["token"])
        statuses.append(status)
        with sock:
            sock.settimeout(20)
            try:
                while b"event: unauthorized" not in b"".join(received):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    received.append(chunk)
            except TimeoutError:
                pass
        done.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(1.0)
    assert statuses == [200]
    revoked = api.delete(f"/v1/tokens/{token['id']}", headers=bearer(token["token"]))
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    assert done.wait(10), "the stream is still open after its token was revoked"
    assert time.monotonic() - started < 5
    assert b"event: unauthorized" in b"".join(received)


def test_tokens_expire_by_default_and_die_with_their_parent_and_their_user(
    api: httpx.Client, tenant: Tenant, platform: Platform
) -> None:
    parent = mint(api, tenant.requester.headers, "parent")
    assert parent["expires_at"] is not None, "no token lives forever by default"
    child = mint(api, bearer(parent["token"]), "child")
    grandchild = mint(api, bearer(child["token"]), "grandchild")
    assert child["parent_token_id"] == parent["id"]
    assert api.get("/v1/me", headers=bearer(grandchild["token"])).status_code == 200
    too_long = api.post(
        "/v1/tokens", json={"name": "forever", "expires_in_days": 3650}, headers=bearer(parent["token"])
    )
    assert too_long.status_code == 422 and too_long.json()["field"] == "expires_in_days"

    assert api.delete(f"/v1/tokens/{parent['id']}", headers=tenant.requester.headers).status_code == 200
    assert api.get("/v1/me", headers=bearer(child["token"])).status_code == 401
    assert api.get("/v1/me", headers=bearer(grandchild["token"])).status_code == 401, "transitively"
    assert api.get("/v1/me", headers=tenant.requester.headers).status_code == 200, "the minting token lives on"

    user = tenant.approver
    spare = mint(api, user.headers, "spare")
    deactivated = api.post(f"/v1/users/{user.user_id}/deactivate", headers=platform.admin.headers)
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    for token in (user.token, spare["token"]):
        assert api.get("/v1/me", headers=bearer(token)).status_code == 401


def test_hostile_query_values_and_unstorable_text_are_422(api: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.requester.headers
    for path, params, field in (
        ("/v1/services", {"offset": str(2**70)}, "offset"),
        ("/v1/requests", {"offset": str(10**12)}, "offset"),
        (f"/v1/operations/{uuid.uuid4()}/events", {"after": str(2**64)}, "after"),
        ("/v1/services", {"offering_id": "web\x00hosting"}, "offering_id"),
    ):
        response = api.get(path, params=params, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == field, response.text
    # Sent as JSON escapes, the only way a client can spell them.
    for body, field in (
        (b'{"name": "tok\\u0000en"}', "name"),
        (b'{"name": "lone \\ud800 surrogate"}', "name"),
        (b'{"name": "ok", "expires_in_days": 1e400}', "expires_in_days"),
    ):
        response = api.post("/v1/tokens", content=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_missing_operation_stream_is_404_without_a_lease(api: httpx.Client, tenant: Tenant) -> None:
    response = api.get(f"/v1/operations/{uuid.uuid4()}/stream", headers=tenant.requester.headers)
    assert response.status_code == 404
