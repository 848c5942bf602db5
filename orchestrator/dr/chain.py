"""The canonical form, hashes and signature input of a DR report, and the check of a whole chain.

Pure functions over plain values, so `tonle dr verify` checks rows read from the database and
reports fetched from the API the same way.

A report's link is the canonical JSON of {seq, id, recorded_at, key_id, prev_hash, body_sha256};
its `hash` is the sha256 of that text and its `signature` is the orchestrator's Ed25519 signature of
it. The body (which names the operation, service, ministry and kind) enters through its sha256, so a
report can be checked link by link even where its body is withheld from the reader.
"""

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator.dr import signing
from orchestrator.dr.models import GENESIS_HASH

# What a report's body must agree with in the row that carries it.
BODY_IDENTITY_FIELDS = ("operation_id", "service_id", "ministry_id", "kind")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"a DR report cannot hold a {type(value).__name__}: {value!r}")


def canonical(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 as is; datetimes as UTC ISO 8601, UUIDs as text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_plain)


def timestamp(value: datetime) -> str:
    # One spelling whatever the database session's time zone: the hash must not depend on it.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def link_text(
    *, seq: int, report_id: uuid.UUID | str, recorded_at: datetime, key_id: str, prev_hash: str, body_sha256: str
) -> str:
    return canonical(
        {
            "seq": seq,
            "id": str(report_id),
            "recorded_at": timestamp(recorded_at),
            "key_id": key_id,
            "prev_hash": prev_hash,
            "body_sha256": body_sha256,
        }
    )


@dataclass(frozen=True)
class Link:
    """One report as a verifier sees it; `body` is None where the reader may not see it."""

    seq: int
    id: str
    operation_id: str
    service_id: str
    ministry_id: str
    kind: str
    recorded_at: datetime
    key_id: str
    prev_hash: str
    body_sha256: str
    hash: str
    signature: str
    body: str | None

    def name(self) -> str:
        if not self.operation_id:  # another ministry's report, seen through the API without its details
            return f"report {self.id} (#{self.seq})"
        return f"report {self.id} (#{self.seq}, {self.kind} operation {self.operation_id})"


@dataclass(frozen=True)
class Problem:
    link: Link | None
    reason: str

    def __str__(self) -> str:
        return f"{self.link.name()}: {self.reason}" if self.link else self.reason


@dataclass(frozen=True)
class Outcome:
    checked: int
    bodies_checked: int
    problem: Problem | None
    head_hash: str = GENESIS_HASH  # the last good report's hash: note it to catch a later cut of the chain's end


def check_link(link: Link, *, previous_hash: str, expected_seq: int, key: Ed25519PublicKey) -> str | None:
    """Why this link is bad, or None.

    The checks go from the body outwards, so the reason names the first thing that was changed.
    """
    if link.seq != expected_seq:
        return f"expected report #{expected_seq} here: reports are missing from the chain"
    if link.body is not None:
        if sha256_hex(link.body) != link.body_sha256:
            return "its body does not match its body_sha256: the report's content was altered"
        try:
            body = json.loads(link.body)
        except ValueError:
            return "its body is not JSON"
        if not isinstance(body, dict) or canonical(body) != link.body:
            return "its body is not in canonical form"
        for field in BODY_IDENTITY_FIELDS:
            stored, signed = getattr(link, field), body.get(field)
            if str(signed) != stored:
                return f"its {field} ({stored}) differs from the one its signed body names ({signed})"
    if link.prev_hash != previous_hash:
        return (
            f"its prev_hash {link.prev_hash[:16]}… is not the hash of the report before it "
            f"({previous_hash[:16]}…): the chain is broken"
        )
    text = link_text(
        seq=link.seq,
        report_id=link.id,
        recorded_at=link.recorded_at,
        key_id=link.key_id,
        prev_hash=link.prev_hash,
        body_sha256=link.body_sha256,
    )
    if sha256_hex(text) != link.hash:
        return "its hash does not match its content: the report's metadata was altered"
    if link.key_id != signing.key_id(key):
        return f"it was signed by key {link.key_id[:16]}…, not by the key verified with ({signing.key_id(key)[:16]}…)"
    if not signing.signature_valid(key, text.encode(), link.signature):
        return "its signature is not valid for the orchestrator's key"
    return None


def verify(links: Iterable[Link], *, key: Ed25519PublicKey, seen_hash: str | None = None) -> Outcome:
    """Check links in chain order from the first report; stops at the first bad one.

    A chain cut short at its end still links up; `seen_hash`, the head an earlier check noted,
    must therefore still be in it.
    """
    previous_hash, expected_seq, checked, bodies, seen = GENESIS_HASH, 1, 0, 0, seen_hash is None
    for link in links:
        reason = check_link(link, previous_hash=previous_hash, expected_seq=expected_seq, key=key)
        if reason is not None:
            problem = Problem(link=link, reason=reason)
            return Outcome(checked=checked, bodies_checked=bodies, problem=problem, head_hash=previous_hash)
        previous_hash, expected_seq = link.hash, link.seq + 1
        checked += 1
        bodies += link.body is not None
        seen = seen or link.hash == seen_hash
    missing = None
    if not seen:
        missing = Problem(
            link=None,
            reason=f"the report with hash {seen_hash} noted earlier is not in the chain: "
            "reports were removed from its end",
        )
    return Outcome(checked=checked, bodies_checked=bodies, problem=missing, head_hash=previous_hash)
