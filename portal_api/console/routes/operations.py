"""All operations the caller can see, filtered and paged, and the operators' retry of a failed one.

The operation's own page with its live log is the staff area's (`routes/live.py`); this list links to it.
"""

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator import policy, workflows
from orchestrator.catalog import service as catalog
from orchestrator.errors import InvalidInput
from orchestrator.ministry import service as ministries
from orchestrator.operations import service as operations
from orchestrator.operations.models import WORKFLOW_STEPS, OperationStatus
from orchestrator.policy import Action
from orchestrator.services import service as services
from orchestrator.workflows import commands
from portal_api.console.csrf import CsrfDep
from portal_api.console.session import PATH, ConsoleActorDep
from portal_api.console.templating import is_platform, render
from portal_api.deps import SessionDep, UowDep
from portal_api.pagination import OffsetQuery

router = APIRouter(prefix=f"{PATH}/operations", include_in_schema=False)

PAGE_SIZE = 25


def _choice(value: str, allowed: list[str], field: str) -> str | None:
    """A filter's value: empty is "all"; anything not offered is refused with the field named."""
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(f"unknown {field} '{value}'", field=field)
    return value


@router.get("")
def list_operations(
    request: Request,
    session: SessionDep,
    actor: ConsoleActorDep,
    status: Annotated[str, Query(max_length=32)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    offering: Annotated[str, Query(max_length=64)] = "",
    ministry: Annotated[str, Query(max_length=64)] = "",
    offset: OffsetQuery = 0,
) -> Response:
    platform = is_platform(actor)
    statuses = [s.value for s in OperationStatus]
    kinds = sorted(WORKFLOW_STEPS)
    offerings = [o.id for o in catalog.list_offerings()]
    # Only the data centre's people choose a ministry; a ministry's own people see theirs alone.
    all_ministries = sorted(ministries.list_all(session=session), key=lambda m: m.name) if platform else []
    chosen_status = _choice(status, statuses, "status")
    chosen_ministry = _choice(ministry, [str(m.id) for m in all_ministries], "ministry")
    rows, total = operations.list_operations(
        session=session,
        actor=actor,
        status=OperationStatus(chosen_status) if chosen_status else None,
        kind=_choice(kind, kinds, "kind"),
        offering_id=_choice(offering, offerings, "offering"),
        ministry_id=uuid.UUID(chosen_ministry) if chosen_ministry else None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    names = {m.id: m.name for m in all_ministries}
    can_retry = policy.allowed(actor, Action.retry)
    listed = []
    for operation in rows:
        service = services.get(session=session, actor=actor, service_id=operation.service_id)
        if operation.ministry_id not in names:
            names[operation.ministry_id] = ministries.get(session=session, ministry_id=operation.ministry_id).name
        listed.append(
            {
                "operation": operation,
                "service": service,
                "ministry": names[operation.ministry_id],
                # A failed failover or failback is not resumed (its report is signed; a new one is started): no button.
                "retryable": can_retry
                and operation.status == OperationStatus.failed
                and workflows.get(operation.kind).retryable,
            }
        )
    filters = {"status": status, "kind": kind, "offering": offering, "ministry": ministry}
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "operator/operations.html",
        {
            "nav": "operations",
            "rows": listed,
            "total": total,
            "limit": PAGE_SIZE,
            "offset": offset,
            "filters": filters,
            "page_url": f"{PATH}/operations" + (f"?{query}" if query else ""),
            "statuses": statuses,
            "kinds": kinds,
            "offerings": offerings,
            "ministries": all_ministries,
        },
    )


@router.post("/{operation_id}/retry")
def retry(operation_id: uuid.UUID, uow: UowDep, actor: ConsoleActorDep, _: CsrfDep) -> Response:
    commands.retry(session=uow.session, actor=actor, operation_id=operation_id)
    uow.commit()
    return RedirectResponse(f"{PATH}/operations/{operation_id}", status_code=303)
