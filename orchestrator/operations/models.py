"""Operations (provision, decommission, ...) and the ordered events each one writes."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, String
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import json_field, timestamp_field


class OperationKind(StrEnum):
    """The kinds built in; a workflow module may add a kind of its own (`orchestrator/workflows`)."""

    provision = "provision"
    modify = "modify"
    backup = "backup"
    restore = "restore"
    drill = "drill"
    failover = "failover"
    failback = "failback"
    decommission = "decommission"
    action = "action"  # a day-2 playbook run (restart, deploy content, ...) on the running service


class OperationStatus(StrEnum):
    queued = "queued"
    running = "running"
    waiting = "waiting"  # parked until an outside signal arrives (no worker held)
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


# An operation in one of these holds its service: no other operation may start on it.
IN_PROGRESS = frozenset({OperationStatus.queued, OperationStatus.running, OperationStatus.waiting})
# Ended for good: the runner has nothing left to do (a failed one can still be retried).
FINISHED = frozenset({OperationStatus.succeeded, OperationStatus.failed, OperationStatus.cancelled})


class StepStatus(StrEnum):
    pending = "pending"
    running = "running"
    waiting = "waiting"
    succeeded = "succeeded"
    failed = "failed"


# The step names of each operation kind, in order; filled from the workflow modules by
# `orchestrator.workflows.load()` (bootstrap), so operations can be created below that layer.
WORKFLOW_STEPS: dict[str, tuple[str, ...]] = {}


class Step(SQLModel):
    name: str
    status: StepStatus = StepStatus.pending
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    waiting_for: str | None = None  # the signal a waiting step needs


class OperationPublic(SQLModel):
    id: uuid.UUID
    service_id: uuid.UUID
    ministry_id: uuid.UUID
    request_id: uuid.UUID | None
    kind: str
    status: OperationStatus
    steps: list[Step]
    attempts: int
    failed_step: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Operation(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="service.id", index=True)
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id", index=True)
    request_id: uuid.UUID | None = Field(default=None, foreign_key="request.id")
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    status: OperationStatus = Field(sa_column=Column(String(32), nullable=False, index=True))
    steps: list[dict[str, Any]] = json_field(default_factory=list)
    attempts: int = 0
    failed_step: str | None = Field(default=None, max_length=64)
    error: str | None = None
    parameters: dict[str, Any] = json_field()
    created_by: uuid.UUID | None = None
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
    started_at: datetime | None = timestamp_field(default_now=False)
    finished_at: datetime | None = timestamp_field(default_now=False)

    def step_list(self) -> list[Step]:
        return [Step.model_validate(s) for s in self.steps]


class EventPublic(SQLModel):
    id: int
    operation_id: uuid.UUID
    at: datetime
    type: str
    level: str
    step: str | None
    message: str
    data: dict[str, Any]


class Event(SQLModel, table=True):
    # The id is the stream position: SSE clients resume with Last-Event-ID.
    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    operation_id: uuid.UUID = Field(foreign_key="operation.id", index=True)
    at: datetime = timestamp_field()
    type: str = Field(max_length=64)
    level: str = Field(default="info", max_length=16)
    step: str | None = Field(default=None, max_length=64)
    message: str
    data: dict[str, Any] = json_field()
