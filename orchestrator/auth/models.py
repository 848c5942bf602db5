"""Users, roles and API tokens. Only a token's SHA-256 is stored; the token is shown once."""

import uuid
from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from orchestrator.actors import Actor, Role
from orchestrator.database.columns import timestamp_field


class UserBase(SQLModel):
    username: str = Field(min_length=2, max_length=64, regex=r"^[a-z0-9][a-z0-9._-]*$")
    full_name: str = Field(default="", max_length=200)
    role: Role
    ministry_id: uuid.UUID | None = Field(
        default=None, description="Required for ministry roles; empty for operators and admins."
    )
    platform_wide: bool = Field(
        default=False,
        description="Automation only: an account with no ministry that schedules backups and drills for every "
        "ministry (and may do nothing else). Required, with an empty ministry_id, for such an account.",
    )


class UserCreate(UserBase):
    pass


class UserPublic(UserBase):
    id: uuid.UUID
    active: bool
    created_at: datetime


class User(UserBase, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    role: Role = Field(sa_column=Column(String(32), nullable=False))
    ministry_id: uuid.UUID | None = Field(default=None, foreign_key="ministry.id", index=True)
    active: bool = True
    created_at: datetime = timestamp_field()
    # `<issuer>|<subject>` of a user who signs in to the console through OpenID Connect.
    oidc_subject: str | None = Field(default=None, max_length=512, unique=True)
    # The console's language for this user (`km` or `en`); unset: negotiated per request.
    preferred_language: str | None = Field(default=None, max_length=8)

    def as_actor(self) -> Actor:
        return Actor(
            user_id=self.id,
            username=self.username,
            role=self.role,
            ministry_id=self.ministry_id,
            platform_wide=self.platform_wide,
        )


class ApiTokenCreate(SQLModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Lifetime; unset: the platform default (90 days). Longer than the platform maximum is refused.",
    )


class ApiTokenPublic(SQLModel):
    id: uuid.UUID
    name: str
    prefix: str
    user_id: uuid.UUID
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    parent_token_id: uuid.UUID | None = Field(
        default=None, description="The token this one was issued with; it stops working when that one does."
    )


class ApiTokenIssued(ApiTokenPublic):
    token: str = Field(description="The secret itself. Shown only in this response.")


class ApiToken(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, description="First characters, to tell tokens apart.")
    token_hash: str = Field(unique=True, index=True, max_length=64)
    created_at: datetime = timestamp_field()
    expires_at: datetime | None = timestamp_field(default_now=False)
    last_used_at: datetime | None = timestamp_field(default_now=False)
    revoked_at: datetime | None = timestamp_field(default_now=False)
    # A token issued by a caller for their own account through another token lives no longer than
    # that token: a stolen token cannot mint a successor that survives its revocation.
    parent_token_id: uuid.UUID | None = Field(default=None, foreign_key="apitoken.id", index=True)


class EventStreamLease(SQLModel, table=True):
    """An open event stream, counted against its token's limit by every API process.

    A row whose `seen_at` is older than a few poll intervals belongs to a process that died;
    it no longer counts.
    """

    __tablename__ = "event_stream_lease"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_id: uuid.UUID = Field(foreign_key="apitoken.id", index=True)
    operation_id: uuid.UUID
    started_at: datetime = timestamp_field()
    seen_at: datetime = timestamp_field()
