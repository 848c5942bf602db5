"""The append-only audit log: every state change, with who made it."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import json_field, timestamp_field


class AuditEntryPublic(SQLModel):
    id: int
    at: datetime
    actor: str
    actor_id: uuid.UUID | None
    ministry_id: uuid.UUID | None
    entity: str
    entity_id: str
    action: str
    from_state: str | None
    to_state: str | None
    detail: dict[str, Any]


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    # The database refuses UPDATE and DELETE on this table (see the initial migration).
    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    at: datetime = timestamp_field(index=True)
    actor: str = Field(max_length=64)
    actor_id: uuid.UUID | None = None
    ministry_id: uuid.UUID | None = Field(default=None, index=True)
    entity: str = Field(max_length=32, index=True)
    entity_id: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str | None = Field(default=None, max_length=32)
    detail: dict[str, Any] = json_field()
