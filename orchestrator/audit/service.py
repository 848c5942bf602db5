"""Writing and reading the audit log."""

import logging
import uuid
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import insert
from sqlmodel import Session, select

from orchestrator.actors import Actor
from orchestrator.audit.models import AuditEntry
from orchestrator.database.columns import utcnow

log = logging.getLogger("tonle.audit")


#: One statement for every entry: compiled once, and sent at once, without the unit of work's
#: bookkeeping for a row this transaction never reads back (every order writes one).
_APPEND = insert(AuditEntry.__table__)  # type: ignore[attr-defined]


class Change(TypedDict):
    """What an entry says: who changed which entity of which ministry, how, and from what to what."""

    actor: Actor
    entity: str
    entity_id: uuid.UUID | str
    ministry_id: uuid.UUID | None
    action: str
    from_state: NotRequired[str | None]
    to_state: NotRequired[str | None]
    detail: NotRequired[dict[str, Any] | None]


def record(*, session: Session, **change: Unpack[Change]) -> None:
    """Append an entry in the caller's transaction: it lands with the change it describes, or not at all."""
    values = entry(**change)
    session.connection().execute(_APPEND, values)
    announce(values)


def entry(**change: Unpack[Change]) -> dict[str, Any]:
    """An entry's column values, for a statement that appends it with its change (see `record`)."""
    actor = change["actor"]
    return {
        "at": utcnow(),
        "actor": actor.username,
        "actor_id": actor.user_id,
        "ministry_id": change["ministry_id"],
        "entity": change["entity"],
        "entity_id": str(change["entity_id"]),
        "action": change["action"],
        "from_state": change.get("from_state"),
        "to_state": change.get("to_state"),
        "detail": _jsonable(change.get("detail") or {}),
    }


def announce(values: dict[str, Any]) -> None:
    """Log an appended entry (`entry`'s values) as the change's event line."""
    from_state, to_state = values["from_state"], values["to_state"]
    transition = f" {from_state} -> {to_state}" if from_state or to_state else ""
    log.info("%s %s %s%s by %s", values["entity"], values["entity_id"], values["action"], transition, values["actor"])


def list_entries(
    *,
    session: Session,
    ministry_id: uuid.UUID | None,
    entity: str | None = None,
    entity_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc())  # type: ignore[union-attr]
    if ministry_id is not None:
        query = query.where(AuditEntry.ministry_id == ministry_id)
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    return session.exec(query.offset(offset).limit(limit)).all()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
