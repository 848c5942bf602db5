"""DR drill campaigns: many services drilled with bounded parallelism, and what their drills gave.

The campaign's state lives in these rows (which drills have started, which wait, which were
skipped and why); whether a started drill passed is its operation's status, never a copy.
"""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, text
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import timestamp_field

MAX_PARALLEL = 10


class DrCampaign(SQLModel, table=True):
    __tablename__ = "dr_campaign"
    # One open scheduled campaign at a time: the schedule never piles a second one on the first.
    __table_args__ = (
        Index(
            "uq_dr_campaign_open_schedule",
            "scheduled",
            unique=True,
            postgresql_where=text("scheduled AND finished_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    ministry_id: uuid.UUID | None = Field(default=None, foreign_key="ministry.id", index=True)  # None: every ministry
    scheduled: bool = False  # started by the drill schedule (the system), not by someone
    max_parallel: int
    started_by: uuid.UUID | None = None  # the user whose permissions start each drill; None: the system
    started_by_name: str = Field(max_length=64)
    created_at: datetime = timestamp_field()
    finished_at: datetime | None = timestamp_field(default_now=False, index=True)


class DrCampaignDrill(SQLModel, table=True):
    """One service of a campaign: waiting for a free slot, started (its operation), or skipped."""

    __tablename__ = "dr_campaign_drill"

    campaign_id: uuid.UUID = Field(foreign_key="dr_campaign.id", primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="service.id", primary_key=True)
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id", index=True)
    position: int  # drills start in this order
    operation_id: uuid.UUID | None = Field(default=None, foreign_key="operation.id", index=True)
    started_at: datetime | None = timestamp_field(default_now=False)
    skipped_reason: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))


class DrillState(StrEnum):
    pending = "pending"  # waiting for a free slot (or for its service to be free)
    running = "running"  # its operation is queued, running or waiting
    passed = "passed"
    failed = "failed"
    skipped = "skipped"  # never started: the service is gone or the starter may no longer drill it


class CampaignDrillPublic(SQLModel):
    service_id: uuid.UUID
    service_name: str
    ministry_id: uuid.UUID
    state: DrillState
    operation_id: uuid.UUID | None
    started_at: datetime | None
    finished_at: datetime | None
    rto_seconds: float | None
    rpo_seconds: float | None
    skipped_reason: str | None


class OverduePublic(SQLModel):
    service_id: uuid.UUID
    service_name: str
    ministry_id: uuid.UUID
    offering_id: str
    drill_every_days: int
    last_passed_drill_at: datetime | None = Field(description="None: never drilled with success.")
    last_passed_operation_id: uuid.UUID | None
    due_at: datetime = Field(
        description="When a drill was due: the last passing one plus the policy's interval, "
        "or the service's creation when it never passed one."
    )
    overdue_seconds: float


class CampaignPublic(SQLModel):
    id: uuid.UUID
    ministry_id: uuid.UUID | None = Field(description="None: every ministry of the data centre.")
    scheduled: bool
    max_parallel: int
    started_by: str
    created_at: datetime
    finished_at: datetime | None
    counts: dict[str, int] = Field(description="Drills by state: pending, running, passed, failed, skipped.")
    worst_rto_seconds: float | None = Field(description="The longest RTO among the drills' reports.")
    worst_rpo_seconds: float | None = Field(description="The longest RPO among the drills' reports.")
    drills: list[CampaignDrillPublic]
    overdue: list[OverduePublic] = Field(description="Services of the campaign's scope overdue a drill, now.")
