"""A deployed service: what a fulfilled request leaves running for a ministry."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, LargeBinary, String
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import json_field, timestamp_field


class ServiceStatus(StrEnum):
    provisioning = "provisioning"
    active = "active"
    modifying = "modifying"
    failing_over = "failing_over"  # being restored at the DR site, to take over from the primary one
    failing_back = "failing_back"  # being restored at the primary site from the DR copy
    decommissioning = "decommissioning"
    failed = "failed"
    retired = "retired"


class ServicePublic(SQLModel):
    id: uuid.UUID
    ministry_id: uuid.UUID
    request_id: uuid.UUID
    offering_id: str
    offering_version: int
    plan: str
    name: str
    status: ServiceStatus
    running_at: str = Field(description="Site the service runs at: the primary one, or the DR site after a failover.")
    stack_name: str
    parameters: dict[str, Any]
    endpoints: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    retain_backups_until: datetime | None
    credentials_revealed_at: datetime | None
    credentials_revealed_by: str | None


class ServiceCredentials(SQLModel):
    service_id: uuid.UUID
    credentials: dict[str, str] = Field(description="Shown this once; Tonle will not show them again.")


class Service(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id", index=True)
    request_id: uuid.UUID = Field(foreign_key="request.id", unique=True)
    offering_id: str = Field(max_length=64, index=True)
    offering_version: int
    plan: str = Field(max_length=64)
    name: str = Field(max_length=200)
    status: ServiceStatus = Field(sa_column=Column(String(32), nullable=False, index=True))
    # Site whose copy serves the service: the primary one, or the DR site between a failover
    # and its failback (the DR copy is then a stack of its own, `dr_stack_name`).
    running_at: str = Field(default="primary", sa_column=Column(String(32), nullable=False, server_default="primary"))
    dr_stack_name: str | None = Field(default=None, max_length=200)
    # Stack name: the unit of locking (one run at a time) and the engine's checkpoint key.
    stack_name: str = Field(max_length=200, unique=True)
    parameters: dict[str, Any] = json_field()
    quota_cost: dict[str, int] = json_field()
    endpoints: dict[str, Any] = json_field()
    # Fernet token of the generated credentials; revealed once, then only rotated.
    credentials_encrypted: str | None = None
    ssh_public_key: str | None = None
    # Fernet token of the service's private SSH key (see services/keys.py).
    ssh_private_key_encrypted: str | None = None
    # Fernet token of a JSON object: the offering's generated secrets (passwords...).
    generated_secrets_encrypted: str | None = None
    tls_cert_pem: str | None = None
    tls_key_encrypted: str | None = None
    # SSH host keys per host of the stack, learned once from the server's console and pinned:
    # {host: {"server_id", "keys": ["<type> <base64>", ...], "learned_at"}}. Public keys, so
    # stored in the clear; see orchestrator/cloud/hostkeys.py.
    host_keys: dict[str, Any] = json_field()
    credentials_revealed_at: datetime | None = timestamp_field(default_now=False)
    credentials_revealed_by: str | None = None
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
    retired_at: datetime | None = timestamp_field(default_now=False)
    retain_backups_until: datetime | None = timestamp_field(default_now=False)


class ServiceUpload(SQLModel, table=True):
    """A file a ministry uploaded for a day-2 action (e.g. a site archive), kept in the database
    so that any worker on any machine can use it."""

    __tablename__ = "service_upload"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="service.id", index=True)
    filename: str = Field(max_length=200)
    media_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_by: str = Field(max_length=64)
    created_at: datetime = timestamp_field()
