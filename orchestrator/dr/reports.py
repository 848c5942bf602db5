"""Recording DR reports (append-only, chained, signed) and reading them back under the usual visibility."""

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlmodel import Session, col, select

from orchestrator import policy
from orchestrator.actors import Actor
from orchestrator.database.columns import utcnow
from orchestrator.database.queries import page
from orchestrator.dr import chain, signing
from orchestrator.dr.models import GENESIS_HASH, DrReport
from orchestrator.errors import NotFound
from orchestrator.operations import service as operations
from orchestrator.operations.models import Operation

REPORTED_KINDS = frozenset({"drill", "failover", "failback"})

# pg_advisory_xact_lock key of the chain's tail ("tonle-dr" in ASCII): one report appended at a time,
# held until the caller's transaction ends, so two reports never read the same tail.
CHAIN_LOCK_KEY = 0x746F6E6C652D6472


def for_operation(*, session: Session, operation_id: uuid.UUID) -> DrReport | None:
    return session.exec(select(DrReport).where(DrReport.operation_id == operation_id)).first()


def record(*, session: Session, operation: Operation, body: dict[str, Any]) -> DrReport:
    """Append the operation's report; a second call for the same operation returns the first.

    No commit: the report lands with the caller's transaction (and the chain stays locked until then).
    """
    if operation.kind not in REPORTED_KINDS:
        raise ValueError(f"a {operation.kind} operation has no DR report (only {', '.join(sorted(REPORTED_KINDS))})")
    content = _with_identity(operation, body)
    body_text = chain.canonical(content)
    key_id = signing.key_id(signing.public_key())  # loads (or first creates) the key before taking the lock
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    existing = for_operation(session=session, operation_id=operation.id)
    if existing is not None:
        return existing
    tail = session.exec(select(DrReport).order_by(col(DrReport.seq).desc()).limit(1)).first()
    report = DrReport(
        seq=tail.seq + 1 if tail else 1,
        operation_id=operation.id,
        ministry_id=operation.ministry_id,
        service_id=operation.service_id,
        kind=operation.kind,
        body=body_text,
        body_sha256=chain.sha256_hex(body_text),
        prev_hash=tail.hash if tail else GENESIS_HASH,
        hash="",
        signature="",
        key_id=key_id,
        recorded_at=utcnow(),  # microseconds, as PostgreSQL keeps them: the hashed time is the one read back
    )
    link = chain.link_text(
        seq=report.seq,
        report_id=report.id,
        recorded_at=report.recorded_at,
        key_id=key_id,
        prev_hash=report.prev_hash,
        body_sha256=report.body_sha256,
    )
    report.hash = chain.sha256_hex(link)
    report.signature = signing.sign(link.encode())
    session.add(report)
    session.flush()
    return report


def _with_identity(operation: Operation, body: dict[str, Any]) -> dict[str, Any]:
    """The body with the operation's identity; a body naming another operation is a caller's bug."""
    identity = {
        "operation_id": str(operation.id),
        "service_id": str(operation.service_id),
        "ministry_id": str(operation.ministry_id),
        "kind": operation.kind,
    }
    # Through JSON once: datetimes and UUIDs become their text, and anything unserialisable fails here.
    content: dict[str, Any] = json.loads(chain.canonical(body))
    if "integrity" in content:
        raise ValueError("a report body may not have an 'integrity' key: the API shows the chain link under it")
    for field, value in identity.items():
        given = content.get(field)
        if given is not None and str(given) != value:
            raise ValueError(f"the report body's {field} is {given}, but the operation's is {value}")
    return {**content, **identity}


def get(*, session: Session, actor: Actor, operation_id: uuid.UUID) -> DrReport:
    """The operation's report; NotFound for an operation the actor may not see or one without a report."""
    operations.get(session=session, actor=actor, operation_id=operation_id)
    report = for_operation(session=session, operation_id=operation_id)
    if report is None:
        raise NotFound(f"operation {operation_id} has no DR report")
    return report


def recent(
    *, session: Session, actor: Actor, kind: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[Sequence[DrReport], int]:
    """The reports the actor may read (of one kind, if given), newest first, and how many in all."""
    query = select(DrReport)
    if not policy.sees_all_ministries(actor):
        query = query.where(DrReport.ministry_id == actor.ministry_id)
    if kind is not None:
        query = query.where(DrReport.kind == kind)
    return page(session, query, col(DrReport.seq).desc(), limit=limit, offset=offset)


def chain_page(*, session: Session, actor: Actor, after_seq: int, limit: int) -> list[tuple[DrReport, bool]]:
    """Every report in chain order after `after_seq`, each with whether the actor may read its content.

    The links of other ministries' reports are shown too (without what they are about), so that any
    auditor can check that the chain is whole, not only the platform's staff.
    """
    rows = _after(session=session, after_seq=after_seq, limit=limit)
    return [(row, policy.can_see(actor, row.ministry_id)) for row in rows]


def _after(*, session: Session, after_seq: int, limit: int) -> Sequence[DrReport]:
    return session.exec(
        select(DrReport).where(col(DrReport.seq) > after_seq).order_by(col(DrReport.seq)).limit(limit)
    ).all()


def as_link(report: DrReport, *, with_body: bool = True) -> chain.Link:
    return chain.Link(
        seq=report.seq,
        id=str(report.id),
        operation_id=str(report.operation_id) if with_body else "",
        service_id=str(report.service_id) if with_body else "",
        ministry_id=str(report.ministry_id) if with_body else "",
        kind=report.kind if with_body else "",
        recorded_at=report.recorded_at,
        key_id=report.key_id,
        prev_hash=report.prev_hash,
        body_sha256=report.body_sha256,
        hash=report.hash,
        signature=report.signature,
        body=report.body if with_body else None,
    )


def verify_all(
    *, session: Session, key: Ed25519PublicKey, seen_hash: str | None = None, batch: int = 500
) -> chain.Outcome:
    """Check the whole chain straight from the database (the orchestrator host's view)."""

    def links() -> Iterator[chain.Link]:
        after = 0
        while rows := _after(session=session, after_seq=after, limit=batch):
            yield from (as_link(row) for row in rows)
            after = rows[-1].seq

    return chain.verify(links(), key=key, seen_hash=seen_hash)
