"""Disaster recovery: signed reports of drills, failovers and failbacks, and the key to check them with."""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from orchestrator.dr import chain, page, signing
from orchestrator.dr import reports as dr_reports
from orchestrator.dr.models import ChainLinkPublic, DrReport, SigningKeyPublic
from portal_api.deps import ActorDep, SessionDep

router = APIRouter(tags=["disaster recovery"])

MAX_CHAIN_PAGE = 1000


def _wants_html(accept: str | None) -> bool:
    """HTML only when asked for ahead of JSON: API clients sending `*/*` keep getting JSON."""
    if not accept:
        return False
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    html = kinds.index("text/html") if "text/html" in kinds else None
    as_json = kinds.index("application/json") if "application/json" in kinds else None
    return html is not None and (as_json is None or html < as_json)


def _integrity(report: DrReport) -> dict[str, Any]:
    return {
        "report_id": str(report.id),
        "seq": report.seq,
        "recorded_at": chain.timestamp(report.recorded_at),
        "body": report.body,
        "body_sha256": report.body_sha256,
        "prev_hash": report.prev_hash,
        "hash": report.hash,
        "signature": report.signature,
        "key_id": report.key_id,
    }


@router.get(
    "/v1/operations/{operation_id}/report",
    summary="The DR report of a drill, failover or failback (JSON, or HTML with `Accept: text/html`)",
    description=(
        "The report's fields (`rto_seconds`, `rpo_seconds`, their targets, `passed`, `restore_point`, `steps`, "
        "`cleanup_verified`, `started_by`, ...) at the top level, and under `integrity` its link in the signed "
        "hash chain: the canonical body text as signed, its sha256, the previous report's hash, its own hash, "
        "and the orchestrator's Ed25519 signature (key at `GET /v1/dr/signing-key`)."
    ),
    responses={
        200: {"content": {"application/json": {}, "text/html": {}}},
        404: {"description": "No such operation, another ministry's, or it has no report (yet)"},
    },
)
def get_report(
    operation_id: uuid.UUID,
    session: SessionDep,
    actor: ActorDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    report = dr_reports.get(session=session, actor=actor, operation_id=operation_id)
    headers = {"Cache-Control": "no-store", "Vary": "Accept"}
    if _wants_html(accept):
        headers["Content-Security-Policy"] = page.CONTENT_SECURITY_POLICY
        return HTMLResponse(page.render(report), headers=headers)
    return JSONResponse({**json.loads(report.body), "integrity": _integrity(report)}, headers=headers)


@router.get("/v1/dr/signing-key", summary="The public key DR reports are signed with (Ed25519)")
def get_signing_key(actor: ActorDep) -> SigningKeyPublic:
    key = signing.public_key()
    return SigningKeyPublic(
        key_id=signing.key_id(key),
        public_key_pem=signing.pem(key),
        public_key_base64=signing.base64_raw(key),
    )


@router.get(
    "/v1/dr/reports",
    summary="The report chain in order, for `tonle dr verify`",
    description=(
        "Every report after `after` (a chain position), oldest first. Another ministry's report is shown as its "
        "bare link (hashes and signature, not what it is about), so any auditor can check that the chain is whole."
    ),
)
def list_chain(
    session: SessionDep,
    actor: ActorDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="Only reports after this chain position")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CHAIN_PAGE)] = 500,
) -> list[ChainLinkPublic]:
    return [
        ChainLinkPublic(
            seq=report.seq,
            id=report.id,
            recorded_at=chain.timestamp(report.recorded_at),
            key_id=report.key_id,
            prev_hash=report.prev_hash,
            body_sha256=report.body_sha256,
            hash=report.hash,
            signature=report.signature,
            operation_id=report.operation_id if visible else None,
            service_id=report.service_id if visible else None,
            ministry_id=report.ministry_id if visible else None,
            kind=report.kind if visible else None,
            body=report.body if visible else None,
        )
        for report, visible in dr_reports.chain_page(session=session, actor=actor, after_seq=after, limit=limit)
    ]
