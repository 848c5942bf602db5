"""A ministry's order for an offering, and the approval votes on it."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from orchestrator.actors import Role
from orchestrator.database.columns import json_field, timestamp_field


class RequestStatus(StrEnum):
    pending_approval = "pending_approval"
    approved = "approved"  # being fulfilled by its provision operation
    fulfilled = "fulfilled"
    failed = "failed"
    rejected = "rejected"
    cancelled = "cancelled"
    expired = "expired"


class RequestKind(StrEnum):
    order = "order"  # a new service
    modify = "modify"  # an existing service to a plan that costs more quota: approved like an order of it
    failover = "failover"  # an existing service restored at the DR site, DNS repointed to it: an operator approves
    failback = "failback"  # a failed-over service brought back to the primary site: an operator approves


# Requests that move a running service between sites (and wait for an operator to say yes).
DR_MOVES = frozenset({RequestKind.failover, RequestKind.failback})


class RequestBase(SQLModel):
    offering_id: str = Field(max_length=64, description="Catalogue offering, e.g. `web-hosting`.")
    plan: str = Field(max_length=64, description="One of the offering's plans.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Must match the offering's parameter schema.")
    justification: str = Field(default="", max_length=2000, description="Why the ministry needs it.")


class RequestCreate(RequestBase):
    ministry_id: uuid.UUID | None = Field(default=None, description="Ordering ministry; defaults to the caller's own.")


class RequestPublic(RequestBase):
    id: uuid.UUID
    kind: RequestKind = Field(
        description=(
            "`order`: a new service. `modify`: `service_id` moving to `plan`; `quota_cost` is the growth. "
            "`failover` / `failback`: `service_id` moving to the DR site / back to the primary one."
        )
    )
    ministry_id: uuid.UUID
    offering_version: int
    status: RequestStatus
    quota_cost: dict[str, int]
    approval_stages: list[Role]
    next_stage: int
    approval_deadline: datetime
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    service_id: uuid.UUID | None
    operation_id: uuid.UUID | None


# A ministry's orders under one Idempotency-Key: one request at most.
IDEMPOTENCY_CONSTRAINT = "uq_request_idempotency"


class Request(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("ministry_id", "idempotency_key", name=IDEMPOTENCY_CONSTRAINT),
        # One plan change waiting for approval per service at most.
        Index(
            "uq_request_pending_change",
            "service_id",
            unique=True,
            postgresql_where=text("kind = 'modify' AND status = 'pending_approval'"),
        ),
        # One failover or failback waiting for approval per service at most.
        Index(
            "uq_request_pending_dr",
            "service_id",
            unique=True,
            postgresql_where=text("kind IN ('failover', 'failback') AND status = 'pending_approval'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: RequestKind = Field(
        default=RequestKind.order, sa_column=Column(String(16), nullable=False, server_default="order")
    )
    # No index of its own: uq_request_idempotency (ministry_id, idempotency_key) leads with it.
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id")
    offering_id: str = Field(max_length=64, index=True)
    offering_version: int
    plan: str = Field(max_length=64)
    parameters: dict[str, Any] = json_field()
    justification: str = Field(default="", max_length=2000)
    status: RequestStatus = Field(sa_column=Column(String(32), nullable=False, index=True))
    quota_cost: dict[str, int] = json_field()
    # Whether quota_cost is still held by this request; guards against double release. An approved
    # plan change hands its growth over to the service's order, which holds the service's quota.
    quota_held: bool = True
    approval_stages: list[Role] = json_field(default_factory=list)
    next_stage: int = 0
    approval_deadline: datetime = timestamp_field(default_now=False)
    idempotency_key: str | None = Field(default=None, max_length=200)
    fingerprint: str = Field(max_length=64, description="Hash of the submitted body, for idempotency.")
    created_by: uuid.UUID | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = timestamp_field(index=True)
    updated_at: datetime = timestamp_field()
    # An order's service once approved; a plan change's service from the start.
    service_id: uuid.UUID | None = Field(default=None, index=True)
    operation_id: uuid.UUID | None = None


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class ApprovalCreate(SQLModel):
    decision: Decision
    comment: str = Field(default="", max_length=2000)
    reference: str = Field(default="", max_length=200, description="Official reference, e.g. the memo number.")


class ApprovalPublic(ApprovalCreate):
    id: uuid.UUID
    request_id: uuid.UUID
    stage: int
    role: Role
    voter_id: uuid.UUID
    voter: str
    voted_at: datetime


class Approval(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("request_id", "stage", name="uq_approval_stage"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="request.id", index=True)
    stage: int
    role: Role = Field(sa_column=Column(String(32), nullable=False))
    decision: Decision = Field(sa_column=Column(String(16), nullable=False))
    voter_id: uuid.UUID = Field(foreign_key="user.id")
    voter: str = Field(max_length=64)
    comment: str = Field(default="", max_length=2000)
    reference: str = Field(default="", max_length=200)
    voted_at: datetime = timestamp_field()
