"""The CA's certificate and (encrypted) key, one row, shared by every orchestrator process."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from orchestrator.database.columns import timestamp_field


class CertificateAuthority(SQLModel, table=True):
    __tablename__ = "certificate_authority"

    id: int = Field(default=1, primary_key=True)  # a single row: there is one CA
    cert_pem: str
    key_encrypted: str  # Fernet token of the PEM private key
    created_at: datetime = timestamp_field()
