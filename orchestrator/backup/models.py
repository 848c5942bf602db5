"""A service's backup policy (from its offering's DR tier) and the restore points its backups left."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import json_field, timestamp_field


class BackupPolicy(SQLModel, table=True):
    """One per service whose offering has a backup tier; made from the tier's defaults, edited
    by the ministry within the tier's bounds (`policies.update`)."""

    __tablename__ = "backup_policy"

    service_id: uuid.UUID = Field(foreign_key="service.id", primary_key=True)
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id", index=True)
    tier: str = Field(sa_column=Column(String(32), nullable=False))
    backup_every_hours: int
    retention: dict[str, int] = json_field()  # {"daily", "weekly", "monthly"}: snapshots kept per period
    rpo_target_seconds: int
    rto_target_seconds: int
    drill_every_days: int
    # When the schedule wants the next backup; a backup that could not start leaves it in the past.
    next_backup_due_at: datetime | None = timestamp_field(default_now=False, index=True)
    last_backup_at: datetime | None = timestamp_field(default_now=False)
    last_backup_operation_id: uuid.UUID | None = None
    # The last time a due backup could not start, and why (the service was busy, not active...).
    last_missed_at: datetime | None = timestamp_field(default_now=False)
    last_missed_reason: str | None = None
    # The last `restic check --read-data-subset` of the service's repositories.
    last_check_at: datetime | None = timestamp_field(default_now=False)
    last_check_ok: bool | None = None
    last_check_detail: str | None = None
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class RestorePoint(SQLModel, table=True):
    """A restic snapshot of one host of a service, as read from its repository."""

    __tablename__ = "restore_point"
    __table_args__ = (UniqueConstraint("service_id", "snapshot_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="service.id", index=True)
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id", index=True)
    host: str = Field(max_length=200)  # the inventory host name
    snapshot_id: str = Field(max_length=64)  # restic's full id
    taken_at: datetime = timestamp_field()  # the snapshot's time, UTC
    size_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    checksum: str = Field(default="", max_length=100)  # "sha256:<hex>", the snapshot's `checksum=` tag
    pruned_at: datetime | None = timestamp_field(default_now=False)
    operation_id: uuid.UUID | None = None  # the backup operation that made it, if any
    created_at: datetime = timestamp_field()


class RetentionPublic(SQLModel):
    daily: int
    weekly: int
    monthly: int


class BackupPolicyPublic(SQLModel):
    service_id: uuid.UUID
    ministry_id: uuid.UUID
    tier: str
    backup_every_hours: int
    retention: dict[str, int]
    rpo_target_seconds: int
    rto_target_seconds: int
    drill_every_days: int
    next_backup_due_at: datetime | None
    last_backup_at: datetime | None
    last_backup_operation_id: uuid.UUID | None
    last_missed_at: datetime | None
    last_missed_reason: str | None
    last_check_at: datetime | None
    last_check_ok: bool | None
    last_check_detail: str | None
    updated_at: datetime
    bounds: dict[str, Any] = Field(default_factory=dict, description="What the tier allows for each editable field.")


class RestorePointPublic(SQLModel):
    id: uuid.UUID
    service_id: uuid.UUID
    host: str
    snapshot_id: str
    taken_at: datetime
    size_bytes: int
    checksum: str
    operation_id: uuid.UUID | None
    pruned_at: datetime | None
