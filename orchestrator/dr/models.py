"""The DR report table: one append-only, signed link of a hash chain per drill, failover or failback."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, String, Text
from sqlmodel import Field, SQLModel

from orchestrator.database.columns import timestamp_field

# The `prev_hash` of the first report: no report comes before it.
GENESIS_HASH = "0" * 64


class DrReport(SQLModel, table=True):
    __tablename__ = "dr_report"

    # The position in the chain, 1, 2, 3, ... without gaps: a deleted report leaves a hole a verifier sees.
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True)
    operation_id: uuid.UUID = Field(foreign_key="operation.id", unique=True)
    ministry_id: uuid.UUID = Field(foreign_key="ministry.id", index=True)
    service_id: uuid.UUID = Field(foreign_key="service.id", index=True)
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    # The canonical JSON text exactly as hashed and signed; JSONB would reorder keys and renormalise numbers.
    body: str = Field(sa_column=Column(Text, nullable=False))
    body_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    # Unique: two reports can never claim the same predecessor, so the chain cannot fork.
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    signature: str = Field(sa_column=Column(String(128), nullable=False))  # Ed25519, base64
    key_id: str = Field(sa_column=Column(String(64), nullable=False))  # sha256 of the raw public key, hex
    recorded_at: datetime = timestamp_field()


class SigningKeyPublic(SQLModel):
    algorithm: str = "Ed25519"
    key_id: str  # sha256 of the raw key, hex; every report names the key it was signed with
    public_key_pem: str
    public_key_base64: str  # the 32 raw bytes


class ChainLinkPublic(SQLModel):
    """One report as `tonle dr verify` checks it; what it is about is left out for another ministry's report."""

    seq: int
    id: uuid.UUID
    recorded_at: str  # exactly as hashed
    key_id: str
    prev_hash: str
    body_sha256: str
    hash: str
    signature: str
    operation_id: uuid.UUID | None
    service_id: uuid.UUID | None
    ministry_id: uuid.UUID | None
    kind: str | None
    body: str | None  # the canonical JSON text as signed
