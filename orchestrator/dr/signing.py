"""The orchestrator's Ed25519 key for DR reports: generated once into the data directory, mode 0600."""

import base64
import hashlib
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestrator.config import get_settings

log = logging.getLogger(__name__)

KEY_FILE_NAME = "dr-signing.key"


class SigningKeyError(Exception):
    """A public key given to verify with is not an Ed25519 key in PEM or raw base64."""


def key_file() -> Path:
    return get_settings().resolved_data_dir / KEY_FILE_NAME


def _create_key_file(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a process starting at the same
    # moment either wins the link or reads the winner's complete key, never half a file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".dr-signing-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        log.warning("generated the DR report signing key at %s; back it up with the database", path)
    finally:
        os.unlink(temporary)


@lru_cache
def private_key() -> Ed25519PrivateKey:
    path = key_file()
    if not path.exists():
        _create_key_file(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def public_key() -> Ed25519PublicKey:
    return private_key().public_key()


def raw_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def base64_raw(key: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_bytes(key)).decode()


def pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """The sha256 of the raw public key, hex: names the key each report was signed with."""
    return hashlib.sha256(raw_bytes(key)).hexdigest()


def sign(data: bytes) -> str:
    return base64.b64encode(private_key().sign(data)).decode()


def signature_valid(key: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or from its 32 raw bytes in base64."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise SigningKeyError(f"the PEM key is a {type(key).__name__}, not an Ed25519 public key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise SigningKeyError(f"not an Ed25519 public key in PEM or raw base64: {exc}") from exc
