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


def _listed(accept: str) -> dict[str, tuple[float, int]]:
    """Each media type of an Accept header with its q-value and position (its first listing)."""
    listed: dict[str, tuple[float, int]] = {}
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        listed.setdefault(media, (quality, position))
    return listed


def wants_html(accept: str | None) -> bool:
    """HTML only when preferred to JSON (by q-value, then order); `*/*` and no header keep JSON."""
    listed = _listed(accept or "")
    html_q, html_at = listed.get("text/html", (0.0, 0))
    json_q, json_at = listed.get("application/json", (0.0, 0))
    return html_q > 0 and (html_q > json_q or (html_q == json_q and html_at < json_at))


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
    if wants_html(accept):
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
