"""Files ministries upload for day-2 actions: checked, stored in PostgreSQL, deleted when used.

The API streams an upload to a temporary file under a byte cap before anything is stored
(`portal_api/routers/services.py`); this module checks what arrived and keeps it in the database
so that a worker on any machine can use it. An upload lives as long as its operation may still
need it: deleted when the operation succeeds, kept after a failure so that a retry can use it,
and purged once `upload_retention_hours` have passed since then (or when the service retires).
"""

import hashlib
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from sqlmodel import Session, col, delete, select

from orchestrator.actors import Actor
from orchestrator.audit import service as audit
from orchestrator.catalog.validation import TEMPLATE_DELIMITERS
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from orchestrator.errors import DomainError, InvalidInput
from orchestrator.operations.models import Operation, OperationKind, OperationStatus
from orchestrator.services.models import Service, ServiceUpload

log = logging.getLogger(__name__)

ARCHIVE_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-tar", "application/zip"})
MAX_FILENAME = 200


class UploadTooLarge(DomainError):
    title = "Content too large"


class UploadTooSlow(DomainError):
    title = "Request timeout"


@dataclass(frozen=True)
class ReceivedFile:
    """An upload as received: its bytes in a local file the receiver owns and deletes."""

    filename: str
    media_type: str
    file: BinaryIO
    size: int
    sha256: str


def check_filename(name: str) -> str:
    """A file name kept only for the record: printable, one path component, bounded."""
    if not name or len(name) > MAX_FILENAME:
        raise ValueError(f"give a file name of 1 to {MAX_FILENAME} characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError("a file name, not a path: no '/' or '\\'")
    # isprintable() is False for control characters (NUL, newline, escape ...) and for separators
    # other than the space; surrogates and unassigned code points are refused too.
    if not name.isprintable() or any(unicodedata.category(c) in ("Cs", "Cn", "Co") for c in name):
        raise ValueError("the file name holds control or unprintable characters")
    # Kept for the record only, never handed to Ansible; refused like any free text all the same.
    if any(delimiter in name for delimiter in TEMPLATE_DELIMITERS):
        raise ValueError("the file name must not contain template delimiters ({{, {%, {#)")
    return name


def check_media_type(media_type: str) -> None:
    if media_type not in ARCHIVE_TYPES:
        shown = media_type[:100] or "no Content-Type"
        raise InvalidInput(f"send a .tar.gz or .zip archive, not {shown}", field="Content-Type")


def check_size(size: int) -> None:
    limit = get_settings().upload_max_bytes
    if size > limit:
        raise UploadTooLarge(f"the upload is larger than the limit of {limit} bytes", field="body", limit=limit)


def store(*, session: Session, actor: Actor, service: Service, received: ReceivedFile) -> uuid.UUID:
    """Keep a received file for the service's next operation."""
    try:
        check_filename(received.filename)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="filename") from exc
    check_media_type(received.media_type)
    check_size(received.size)
    if received.size == 0:
        raise InvalidInput("the archive is empty", field="body")
    received.file.seek(0)
    data = received.file.read(received.size + 1)
    if len(data) != received.size or hashlib.sha256(data).hexdigest() != received.sha256:
        raise InvalidInput("the upload changed while it was stored; send it again", field="body")
    record = ServiceUpload(
        service_id=service.id,
        filename=received.filename,
        media_type=received.media_type,
        size=received.size,
        sha256=received.sha256,
        data=data,
        uploaded_by=actor.username,
    )
    session.add(record)
    session.flush()
    del data
    audit.record(
        session=session,
        actor=actor,
        entity="service",
        entity_id=service.id,
        ministry_id=service.ministry_id,
        action="content_uploaded",
        detail={
            "upload": str(record.id),
            "filename": received.filename,
            "size": received.size,
            "sha256": received.sha256,
        },
    )
    return record.id


def upload_ids(operation: Operation) -> list[uuid.UUID]:
    return [uuid.UUID(str(value)) for value in (operation.parameters.get("uploads") or {}).values()]


def discard_for(*, session: Session, operation: Operation) -> int:
    """Delete what an operation that has ended for good no longer needs.

    A decommission retires the service, so every upload of the service goes with it.
    """
    query = delete(ServiceUpload)
    if operation.kind == OperationKind.decommission:
        query = query.where(col(ServiceUpload.service_id) == operation.service_id)
    else:
        ids = upload_ids(operation)
        if not ids:
            return 0
        query = query.where(col(ServiceUpload.id).in_(ids))
    result = session.exec(query)
    return int(result.rowcount or 0)


def purge_expired(*, session: Session) -> int:
    """Delete uploads older than the retention period whose service runs nothing now.

    Those belong to failed operations nobody retried in time (a later retry fails with
    "the uploaded file is gone"), or to records nothing refers to.
    """
    cutoff = utcnow() - timedelta(hours=get_settings().upload_retention_hours)
    busy = select(Operation.service_id).where(
        col(Operation.status).in_([OperationStatus.queued, OperationStatus.running])
    )
    result = session.exec(
        delete(ServiceUpload).where(col(ServiceUpload.created_at) < cutoff, col(ServiceUpload.service_id).not_in(busy))
    )
    count = int(result.rowcount or 0)
    if count:
        log.info("purged %d upload(s) past their retention", count)
    return count
