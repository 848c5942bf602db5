"""The baked images the orchestrator built, one row per build at one site."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, Index, String, text
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import json_field, timestamp_field


class ImageStatus(StrEnum):
    building = "building"
    available = "available"
    failed = "failed"
    retired = "retired"  # deleted from Glance: newer builds of its role and site replaced it


class BakedImage(SQLModel, table=True):
    __tablename__ = "baked_image"
    __table_args__ = (
        # One build of a role at a site at a time: asking again while it runs returns that build.
        Index(
            "uq_baked_image_building",
            "role",
            "site",
            unique=True,
            postgresql_where=text("status = 'building'"),
        ),
        Index("ix_baked_image_role_site_status", "role", "site", "status"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    role: str = Field(max_length=32)
    site: str = Field(max_length=64)
    # `tonle-<role>-<UTC yyyymmddHHMMSS>`: what orders name as their servers' image.
    name: str = Field(max_length=64, unique=True)
    glance_image_id: str | None = Field(default=None, max_length=64)
    status: ImageStatus = Field(sa_column=Column(String(16), nullable=False))
    install_digest: str = Field(max_length=64)  # sha256 of the install phase it was built from
    base_image: str = Field(max_length=255)
    packages: dict[str, Any] = json_field()  # `/etc/tonle/image.json` of the built image
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    build_seconds: float | None = None
    progress: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))  # the latest step
    error: str | None = Field(default=None, sa_column=Column(String(2000), nullable=True))
    requested_by: str = Field(max_length=64)
    created_at: datetime = timestamp_field()
    built_at: datetime | None = timestamp_field(default_now=False)
    retired_at: datetime | None = timestamp_field(default_now=False)


class BakedImagePublic(SQLModel):
    id: uuid.UUID
    role: str
    site: str
    name: str
    glance_image_id: str | None
    status: ImageStatus
    install_digest: str
    current: bool = Field(description="Built from the install phase the orchestrator has now: orders may use it.")
    base_image: str
    packages: dict[str, Any]
    size_bytes: int | None
    build_seconds: float | None
    progress: str | None
    error: str | None
    requested_by: str
    created_at: datetime
    built_at: datetime | None
    retired_at: datetime | None


class BuildAccepted(SQLModel):
    """`POST /v1/images/builds`: the builds asked for, each a job of the worker."""

    builds: list[BakedImagePublic]
