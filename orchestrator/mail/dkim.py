"""The DKIM key of a mail domain: generated once, private half encrypted at rest."""

import base64
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048


@dataclass(frozen=True)
class DkimKey:
    selector: str
    public_key: str  # base64 of the DER SubjectPublicKeyInfo: the DNS record's `p=` value
    private_key_pem: str = field(repr=False)


def selector_for(moment: datetime) -> str:
    """`tonle<yyyymm>`: a later key (a rotation) gets a selector of its own month."""
    return f"tonle{moment:%Y%m}"


def generate(*, now: datetime) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
    return DkimKey(selector=selector_for(now), public_key=public_key_of(private_pem), private_key_pem=private_pem)


def public_key_of(private_key_pem: str) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    der = key.public_key().public_bytes(
        encoding=serialization.Encoding.DER, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def dns_record(key: DkimKey) -> str:
    return f"v=DKIM1; k=rsa; p={key.public_key}"
