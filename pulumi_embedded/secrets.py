"""Secrets at rest: every secret value in a checkpoint is Fernet-encrypted before it is stored.

A stored secret keeps Pulumi's checkpoint spelling, `{SIG_KEY: SECRET_SIG, "ciphertext": c}`,
so an exported deployment marks secrets the way Pulumi does. The key is a Fernet key from
settings or from a key file under the data directory, created on first use (mode 0600).
"""

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from pulumi_embedded.protocol import SECRET_SIG, SIG_KEY, is_secret


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, value: Any) -> Any:
        """`value` with every secret's plaintext replaced by its ciphertext."""
        if is_secret(value):
            if "ciphertext" in value:
                return value
            token = self._fernet.encrypt(json.dumps(value.get("value")).encode()).decode()
            return {SIG_KEY: SECRET_SIG, "ciphertext": token}
        if isinstance(value, dict):
            return {k: self.seal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.seal(v) for v in value]
        return value

    def open(self, value: Any) -> Any:
        if is_secret(value) and "ciphertext" in value:
            try:
                plain = self._fernet.decrypt(value["ciphertext"].encode())
            except InvalidToken as exc:
                raise ValueError(
                    "a stack checkpoint holds a secret this engine's key cannot decrypt "
                    "(was the engine secrets key changed or the key file replaced?)"
                ) from exc
            return {SIG_KEY: SECRET_SIG, "value": json.loads(plain)}
        if isinstance(value, dict):
            return {k: self.open(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.open(v) for v in value]
        return value


def load_or_create_key(path: Path) -> bytes:
    """The Fernet key in `path`, created (0600) if the file does not exist yet."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key
