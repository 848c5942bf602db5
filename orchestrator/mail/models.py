"""A service's mail domain (its DKIM key), mailboxes and aliases."""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import EmailStr
from sqlalchemy import Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import json_field, timestamp_field

# The health check's two mailboxes, made with every domain: one sends, the other receives.
PROBE_SENDER = "tonle-probe-a"
PROBE_RECIPIENT = "tonle-probe-b"


class MailboxStatus(StrEnum):
    active = "active"
    removed = "removed"  # no login, no delivery; its mail is kept until `retain_until`


class MailDomain(SQLModel, table=True):
    __tablename__ = "mail_domain"

    service_id: uuid.UUID = Field(foreign_key="service.id", primary_key=True)
    domain: str = Field(max_length=253, index=True)
    dkim_selector: str = Field(max_length=63)
    dkim_private_key_encrypted: str  # Fernet token of the PKCS#8 PEM
    dkim_public_key: str  # base64 DER SubjectPublicKeyInfo: the DNS record's `p=` value
    created_at: datetime = timestamp_field()


class MailboxBase(SQLModel):
    address: EmailStr = Field(max_length=254, description="Under the service's mail domain; stored lower case.")
    full_name: str = Field(min_length=1, max_length=120)


class MailboxCreate(MailboxBase):
    pass


class MailboxPublic(MailboxBase):
    id: uuid.UUID
    service_id: uuid.UUID
    quota_mb: int
    system: bool
    status: MailboxStatus
    created_at: datetime
    removed_at: datetime | None
    retain_until: datetime | None


class Mailbox(SQLModel, table=True):
    __tablename__ = "mailbox"
    # One live mailbox per address; a removed one keeps its row (and its mail) until purged.
    __table_args__ = (
        Index(
            "uq_mailbox_active_address",
            "service_id",
            "address",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="service.id", index=True)
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id", index=True)
    address: str = Field(max_length=254)
    full_name: str = Field(max_length=120)
    quota_mb: int
    password_hash: str  # `{SHA512-CRYPT}$6$...`, what Dovecot's passwd-file holds
    password_encrypted: str | None = None  # the plaintext until it is shown (system mailboxes keep it)
    system: bool = False
    status: MailboxStatus = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = timestamp_field()
    removed_at: datetime | None = timestamp_field(default_now=False)
    retain_until: datetime | None = timestamp_field(default_now=False)


class MailAliasBase(SQLModel):
    address: EmailStr = Field(max_length=254, description="Under the service's mail domain; not a mailbox's.")
    destinations: list[EmailStr] = Field(
        min_length=1,
        max_length=50,
        description="Mailboxes or aliases of the domain, or addresses elsewhere.",
    )


class MailAliasCreate(MailAliasBase):
    pass


class MailAliasPublic(MailAliasBase):
    id: uuid.UUID
    service_id: uuid.UUID
    created_at: datetime


class MailAlias(SQLModel, table=True):
    __tablename__ = "mail_alias"
    __table_args__ = (UniqueConstraint("service_id", "address", name="uq_mail_alias_address"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    service_id: uuid.UUID = Field(foreign_key="service.id", index=True)
    address: str = Field(max_length=254)
    destinations: list[str] = json_field(default_factory=list)
    created_at: datetime = timestamp_field()
