"""A ministry is a tenant: it owns users, requests and services, and has a quota."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, field_validator
from sqlmodel import Field, SQLModel

from orchestrator import quota
from orchestrator.database.columns import json_field, timestamp_field
from orchestrator.ministry import domains

MAX_SUFFIXES = 50


def _dns_suffix(value: str) -> str:
    problem = domains.problem_with_name(value)
    if problem:
        raise ValueError(f"'{value}' is not a DNS suffix a ministry can own: it {problem}")
    return domains.normalise(value)


# Stored normalised (lower case, no trailing dot), so comparisons are plain string work.
DnsSuffix = Annotated[str, AfterValidator(_dns_suffix)]
DNS_SUFFIXES_HELP = (
    "DNS suffixes the ministry owns, e.g. `health.gov.example`: its orders may only name these "
    "or names under them. No two ministries own the same or overlapping suffixes."
)


class MinistryBase(SQLModel):
    code: str = Field(
        min_length=2,
        max_length=32,
        regex=r"^[a-z][a-z0-9-]*$",
        description="Short stable slug, e.g. `health`; used in resource names.",
    )
    name: str = Field(min_length=2, max_length=200)


class QuotaLimits(SQLModel):
    vcpu: int = Field(default=0, ge=0)
    ram_gb: int = Field(default=0, ge=0)
    storage_gb: int = Field(default=0, ge=0)
    object_gb: int = Field(default=0, ge=0)
    public_ips: int = Field(default=0, ge=0)
    mailboxes: int = Field(default=0, ge=0)
    rack_units: int = Field(default=0, ge=0)


class MinistryCreate(MinistryBase):
    quota_limits: QuotaLimits = Field(default_factory=QuotaLimits)
    dns_suffixes: list[DnsSuffix] = Field(default_factory=list, max_length=MAX_SUFFIXES, description=DNS_SUFFIXES_HELP)


class MinistryUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    quota_limits: QuotaLimits | None = None
    dns_suffixes: list[DnsSuffix] | None = Field(
        default=None, max_length=MAX_SUFFIXES, description="Replaces the list. " + DNS_SUFFIXES_HELP
    )


class MinistryPublic(MinistryBase):
    id: uuid.UUID
    dns_suffixes: list[str]
    quota_limits: dict[str, int]
    quota_used: dict[str, int]
    created_at: datetime

    @field_validator("quota_limits", "quota_used")
    @classmethod
    def _complete(cls, value: dict[str, int]) -> dict[str, int]:
        return quota.normalise(value)


class Ministry(MinistryBase, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=32)
    quota_limits: dict[str, int] = json_field(default_factory=quota.empty)
    # Reserved by live requests and services; changed only under a row lock (see service.py).
    quota_used: dict[str, int] = json_field(default_factory=quota.empty)
    # Normalised; unique and non-overlapping across ministries (see service.py).
    dns_suffixes: list[str] = json_field(default_factory=list)
    created_at: datetime = timestamp_field()
