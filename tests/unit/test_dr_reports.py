"""DR report integrity without a database: the canonical form, the signing key, and the chain check.

Recording through PostgreSQL (the advisory lock, the append-only trigger) and checking through the
API and the CLI are in tests/integration/test_dr_reports.py.
"""

import base64
import json
import math
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.config import get_settings
from orchestrator.dr import chain, signing
from orchestrator.dr.models import GENESIS_HASH
from portal_api.routers.dr import wants_html

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test its own data directory, hence its own signing key."""
    monkeypatch.setenv("TONLE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    signing.private_key.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    signing.private_key.cache_clear()


def seal(*, seq: int, prev_hash: str, body: dict[str, object], at: datetime) -> chain.Link:
    """A link made the way `reports.record` makes one, signed with this test's key."""
    body_text = chain.canonical(body)
    report_id = uuid.uuid4()
    key_id = signing.key_id(signing.public_key())
    body_sha256 = chain.sha256_hex(body_text)
    text = chain.link_text(
        seq=seq, report_id=report_id, recorded_at=at, key_id=key_id, prev_hash=prev_hash, body_sha256=body_sha256
    )
    return chain.Link(
        seq=seq,
        id=str(report_id),
        operation_id=str(body["operation_id"]),
        service_id=str(body["service_id"]),
        ministry_id=str(body["ministry_id"]),
        kind=str(body["kind"]),
        recorded_at=at,
        key_id=key_id,
        prev_hash=prev_hash,
        body_sha256=body_sha256,
        hash=chain.sha256_hex(text),
        signature=signing.sign(text.encode()),
        body=body_text,
    )


def drill_body(rto: float) -> dict[str, object]:
    return {
        "operation_id": str(uuid.uuid4()),
        "service_id": str(uuid.uuid4()),
        "ministry_id": str(uuid.uuid4()),
        "kind": "drill",
        "rto_seconds": rto,
        "rpo_seconds": 3600,
        "passed": True,
        "failed_check": None,
        "steps": [{"name": "restore", "status": "succeeded"}],
    }


def make_chain(length: int) -> list[chain.Link]:
    links: list[chain.Link] = []
    at = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
    for seq in range(1, length + 1):
        prev = links[-1].hash if links else GENESIS_HASH
        links.append(seal(seq=seq, prev_hash=prev, body=drill_body(100.0 + seq), at=at + timedelta(minutes=seq)))
    return links


def reason(links: list[chain.Link]) -> tuple[int, str]:
    outcome = chain.verify(links, key=signing.public_key())
    assert outcome.problem is not None and outcome.problem.link is not None
    return outcome.problem.link.seq, outcome.problem.reason


# The canonical form


def test_canonical_form_sorts_keys_drops_whitespace_and_keeps_unicode() -> None:
    assert chain.canonical({"b": 1, "a": [1, {"d": "ស្រុក", "c": None}]}) == '{"a":[1,{"c":null,"d":"ស្រុក"}],"b":1}'


def test_canonical_form_spells_times_in_utc_whatever_the_zone() -> None:
    utc = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    phnom_penh = utc.astimezone(timezone(timedelta(hours=7)))
    assert chain.canonical({"t": phnom_penh}) == chain.canonical({"t": utc}) == '{"t":"2026-11-30T02:00:00.000000Z"}'


def test_canonical_form_writes_uuids_as_text_and_refuses_what_json_cannot_hold() -> None:
    some_id = uuid.uuid4()
    assert chain.canonical({"id": some_id}) == json.dumps({"id": str(some_id)}, separators=(",", ":"))
    with pytest.raises(ValueError):
        chain.canonical({"rto_seconds": math.nan})
    with pytest.raises(TypeError, match="bytes"):
        chain.canonical({"blob": b"\x00"})


# The signing key


def test_the_key_is_made_once_private_to_its_owner_and_reused(data_dir: Path) -> None:
    first = signing.key_id(signing.public_key())
    key_file = data_dir / signing.KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    signing.private_key.cache_clear()  # as a new process would
    assert signing.key_id(signing.public_key()) == first
    assert [p.name for p in data_dir.iterdir()] == [signing.KEY_FILE_NAME]  # no temporary file left behind


def test_the_public_key_reads_back_from_pem_and_from_raw_base64() -> None:
    key = signing.public_key()
    for published in (signing.pem(key), signing.base64_raw(key)):
        assert signing.key_id(signing.load_public_key(published)) == signing.key_id(key)
    assert len(base64.b64decode(signing.base64_raw(key))) == 32


@pytest.mark.parametrize("text", ["not a key", base64.b64encode(b"short").decode(), "-----BEGIN PUBLIC KEY-----\nx"])
def test_a_public_key_that_is_not_ed25519_is_refused(text: str) -> None:
    with pytest.raises(signing.SigningKeyError):
        signing.load_public_key(text)


def test_a_signature_holds_for_its_text_only() -> None:
    signature = signing.sign(b"report")
    assert signing.signature_valid(signing.public_key(), b"report", signature)
    assert not signing.signature_valid(signing.public_key(), b"report!", signature)
    assert not signing.signature_valid(signing.public_key(), b"report", "not base64 at all!")


# The chain


def test_an_untouched_chain_verifies() -> None:
    outcome = chain.verify(make_chain(4), key=signing.public_key())
    assert outcome.problem is None
    assert (outcome.checked, outcome.bodies_checked) == (4, 4)


def test_an_empty_chain_verifies() -> None:
    assert chain.verify([], key=signing.public_key()) == chain.Outcome(
        checked=0, bodies_checked=0, problem=None, head_hash=GENESIS_HASH
    )


def test_a_chain_cut_at_its_end_fails_against_the_head_noted_before() -> None:
    links = make_chain(3)
    noted = chain.verify(links, key=signing.public_key()).head_hash
    assert noted == links[-1].hash
    assert chain.verify(links, key=signing.public_key(), seen_hash=noted).problem is None
    cut = chain.verify(links[:2], key=signing.public_key(), seen_hash=noted)
    assert cut.checked == 2 and cut.problem is not None and cut.problem.link is None
    assert (
        str(cut.problem)
        == f"the report with hash {noted} noted earlier is not in the chain: reports were removed from its end"
    )


def test_a_changed_body_is_named() -> None:
    links = make_chain(3)
    assert links[1].body is not None
    links[1] = replace(links[1], body=links[1].body.replace('"passed":true', '"passed":false'))
    assert reason(links) == (2, "its body does not match its body_sha256: the report's content was altered")


def test_a_changed_body_with_its_sha256_recomputed_breaks_the_hash() -> None:
    links = make_chain(3)
    body = chain.canonical({**json.loads(links[2].body or "{}"), "rto_seconds": 1})
    links[2] = replace(links[2], body=body, body_sha256=chain.sha256_hex(body))
    assert reason(links) == (3, "its hash does not match its content: the report's metadata was altered")


def test_a_rehashed_report_without_the_private_key_fails_its_signature() -> None:
    links = make_chain(2)
    body = chain.canonical({**json.loads(links[1].body or "{}"), "passed": False})
    text = chain.link_text(
        seq=2,
        report_id=links[1].id,
        recorded_at=links[1].recorded_at,
        key_id=links[1].key_id,
        prev_hash=links[1].prev_hash,
        body_sha256=chain.sha256_hex(body),
    )
    links[1] = replace(links[1], body=body, body_sha256=chain.sha256_hex(body), hash=chain.sha256_hex(text))
    assert reason(links) == (2, "its signature is not valid for the orchestrator's key")


def test_a_report_whose_row_names_another_operation_than_its_body_is_named() -> None:
    links = make_chain(2)
    links[0] = replace(links[0], operation_id=str(uuid.uuid4()))
    seq, why = reason(links)
    assert seq == 1 and why.startswith("its operation_id") and "differs from the one its signed body names" in why


def test_a_broken_link_is_named() -> None:
    links = make_chain(3)
    links[2] = replace(links[2], prev_hash="f" * 64)
    seq, why = reason(links)
    assert seq == 3 and why.endswith("the chain is broken")


def test_a_removed_report_leaves_a_gap_that_is_named() -> None:
    links = make_chain(4)
    del links[1]
    assert reason(links) == (3, "expected report #2 here: reports are missing from the chain")


def test_a_report_signed_by_another_key_is_named() -> None:
    links = make_chain(2)
    trusted = Ed25519PrivateKey.generate().public_key()
    outcome = chain.verify(links, key=trusted)
    assert outcome.problem is not None and outcome.problem.link == links[0]
    assert outcome.problem.reason.startswith("it was signed by key ")


def test_links_whose_bodies_are_withheld_still_prove_the_chain_whole() -> None:
    links = make_chain(3)
    links[1] = replace(links[1], body=None, operation_id="", service_id="", ministry_id="", kind="")
    outcome = chain.verify(links, key=signing.public_key())
    assert (outcome.problem, outcome.checked, outcome.bodies_checked) == (None, 3, 2)
    assert links[1].name() == f"report {links[1].id} (#2)"


def test_the_problem_names_the_report_its_position_and_its_operation() -> None:
    links = make_chain(1)
    links[0] = replace(links[0], signature=base64.b64encode(bytes(64)).decode())
    outcome = chain.verify(links, key=signing.public_key())
    assert str(outcome.problem) == (
        f"report {links[0].id} (#1, drill operation {links[0].operation_id}): "
        "its signature is not valid for the orchestrator's key"
    )


# Content negotiation of the report route


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("*/*", False),
        ("application/json, text/html", False),
        ("text/html;q=0.1, application/json", False),
        ("text/html;q=0", False),
        ("text/html", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser
        ("application/json;q=0.5, text/html", True),
    ],
)
def test_html_only_when_preferred_to_json(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html
