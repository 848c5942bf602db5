"""The audit log, scoped like everything else."""

from typing import Annotated

from fastapi import APIRouter, Query

from orchestrator import policy
from orchestrator.audit import service as audit
from orchestrator.audit.models import AuditEntryPublic
from portal_api.deps import AuditReaderDep, SessionDep
from portal_api.pagination import LimitQuery, OffsetQuery

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", summary="Audit entries, newest first")
def list_audit(
    session: SessionDep,
    actor: AuditReaderDep,
    entity: Annotated[str | None, Query(description="e.g. request, service, operation")] = None,
    entity_id: str | None = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> list[AuditEntryPublic]:
    rows = audit.list_entries(
        session=session,
        ministry_id=None if policy.sees_all_ministries(actor) else actor.ministry_id,
        entity=entity,
        entity_id=entity_id,
        limit=limit,
        offset=offset,
    )
    return [AuditEntryPublic.model_validate(r) for r in rows]
