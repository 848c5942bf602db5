"""Secrets at rest: one Fernet key for the installation, from settings or a key file."""

import hashlib
import hmac
import logging
import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from orchestrator.config import get_settings

log = logging.getLogger(__name__)


class SecretsError(Exception):
    """A secret could not be read back (wrong or rotated key, or a damaged value)."""


def _key_file() -> Path:
    return get_settings().resolved_data_dir / "secret.key"


@lru_cache
def master_key() -> bytes:
    configured = get_settings().secret_key
    if configured:
        return configured.encode()
    path = _key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
            log.warning("generated a new secrets key at %s; back it up with the database", path)
    return path.read_bytes().strip()


def derived_key(purpose: str) -> bytes:
    """A key for one purpose (signing a cookie, a CSRF token), derived from the master key, so a
    value signed for one purpose is never accepted for another."""
    return hmac.new(master_key(), f"tonle:{purpose}".encode(), hashlib.sha256).digest()


def encrypt(plaintext: str) -> str:
    return Fernet(master_key()).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return Fernet(master_key()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretsError("cannot decrypt a stored secret: the secrets key differs from the one used") from exc
