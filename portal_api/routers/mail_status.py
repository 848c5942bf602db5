"""A mail service's DNS status: every record its domain should have against what DNS serves."""

import uuid
from typing import Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from orchestrator.mail import dns_query
from orchestrator.mail import status as mail_status
from portal_api.deps import ActorDep, SessionDep

router = APIRouter(prefix="/v1/services", tags=["mail"])


class RecordStatusPublic(BaseModel):
    name: str
    type: str
    expected: list[str]
    served: list[str]
    status: Literal["ok", "missing", "different", "unexpected"]


class MailDnsStatus(BaseModel):
    service_id: uuid.UUID
    domain: str
    ok: bool
    problems: list[str]
    records: list[RecordStatusPublic]


@router.get(
    "/{service_id}/mail/dns-status",
    summary="The mail domain's DNS records: expected against served, ok or drift per record",
    responses={
        404: {"description": "No such service (or another ministry's), or it has no mail domain"},
        503: {"description": "The data centre's DNS server is not configured or does not answer"},
    },
)
def get_mail_dns_status(service_id: uuid.UUID, session: SessionDep, actor: ActorDep) -> MailDnsStatus:
    """Asked of DNS now; drift is also recorded on the service, once per change, by a periodic check."""
    try:
        found = mail_status.status_of(session=session, actor=actor, service_id=service_id)
    except dns_query.DnsUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return MailDnsStatus(
        service_id=found.service_id,
        domain=found.domain,
        ok=found.ok,
        problems=found.problems,
        records=[
            RecordStatusPublic(
                name=record.name, type=record.type, expected=record.expected, served=record.served, status=record.status
            )
            for record in found.records
        ],
    )
