"""Mailbox passwords: generated here, stored as the hash Dovecot's passwd-file reads."""

import secrets
import string
import warnings

# passlib imports the deprecated `crypt` module when it is there, only to prefer the C
# implementation; its own pure-Python SHA512-crypt is what remains once `crypt` is gone.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="'crypt' is deprecated", category=DeprecationWarning)
    from passlib.hash import sha512_crypt

SCHEME = "{SHA512-CRYPT}"
# Readable aloud and typed by hand: no look-alike characters (0/O, 1/l/I).
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
LENGTH = 20  # ~113 bits


def generate() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(LENGTH))


def dovecot_hash(password: str) -> str:
    """`{SHA512-CRYPT}$6$salt$hash`: Dovecot verifies it without knowing the password."""
    # crypt's default 5000 rounds: the passwords are random (~113 bits), so stretching would add
    # nothing but seconds to an order of hundreds of mailboxes and to every IMAP login.
    return SCHEME + sha512_crypt.using(rounds=5000).hash(password)


def verify(password: str, stored: str) -> bool:
    if not stored.startswith(SCHEME):
        return False
    return bool(sha512_crypt.verify(password, stored.removeprefix(SCHEME)))
