"""A service's backup policy and its restore points."""

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.backup import policies, restore_points
from orchestrator.backup.models import BackupPolicyPublic, RestorePointPublic
from portal_api.deps import ActorDep, SessionDep, UowDep

router = APIRouter(prefix="/v1/services", tags=["backups"])


class RetentionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    daily: int | None = Field(default=None, description="Daily snapshots kept.")
    weekly: int | None = Field(default=None, description="Weekly snapshots kept.")
    monthly: int | None = Field(default=None, description="Monthly snapshots kept.")


class BackupPolicyChange(BaseModel):
    """Only the fields given change; each must lie within the tier's bounds (see `bounds`)."""

    model_config = ConfigDict(extra="forbid")

    backup_every_hours: int | None = None
    retention: RetentionChange | None = None
    rpo_target_seconds: int | None = None
    rto_target_seconds: int | None = None
    drill_every_days: int | None = None


@router.get("/{service_id}/backup-policy", summary="The service's backup policy, with its tier's bounds")
def get_backup_policy(service_id: uuid.UUID, uow: UowDep, actor: ActorDep) -> BackupPolicyPublic:
    found = policies.read(session=uow.session, actor=actor, service_id=service_id)
    uow.commit()  # the first reading makes the policy from the tier's defaults
    return policies.public(found)


@router.put(
    "/{service_id}/backup-policy",
    summary="Change the service's backup policy within its tier's bounds",
    responses={422: {"description": "A value outside the tier's bounds, naming the field and the bound"}},
)
def put_backup_policy(
    service_id: uuid.UUID, body: BackupPolicyChange, uow: UowDep, actor: ActorDep
) -> BackupPolicyPublic:
    changes = body.model_dump(exclude_none=True)
    changed = policies.update(session=uow.session, actor=actor, service_id=service_id, changes=changes)
    uow.commit()
    return policies.public(changed)


@router.get("/{service_id}/restore-points", summary="The service's restore points, newest first")
def list_restore_points(
    service_id: uuid.UUID, session: SessionDep, actor: ActorDep, include_pruned: bool = False
) -> list[RestorePointPublic]:
    """Points retention pruned are left out unless `include_pruned=true` (then `pruned_at` says when)."""
    rows = restore_points.list_for_service(
        session=session, actor=actor, service_id=service_id, include_pruned=include_pruned
    )
    return [RestorePointPublic.model_validate(row) for row in rows]
