"""Mailbox password hashes Dovecot reads, and the DKIM key a domain signs with."""

import base64
import importlib
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from orchestrator import secrets
from orchestrator.config import get_settings
from orchestrator.mail import dkim, passwords

pytestmark = pytest.mark.unit


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TONLE_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    secrets.master_key.cache_clear()
    yield
    get_settings.cache_clear()
    secrets.master_key.cache_clear()


def test_a_password_hash_is_dovecot_sha512_crypt_and_verifies_with_the_system_crypt() -> None:
    password = passwords.generate()
    stored = passwords.dovecot_hash(password)
    assert stored.startswith("{SHA512-CRYPT}$6$")
    bare = stored.removeprefix("{SHA512-CRYPT}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        system_crypt = importlib.import_module("crypt")
    # glibc's crypt(3), what Dovecot itself calls, gives the same hash for the same salt.
    assert system_crypt.crypt(password, bare) == bare
    assert passwords.verify(password, stored)
    assert not passwords.verify(password + "x", stored)
    assert not passwords.verify(password, bare)  # without the scheme Dovecot would not know it


def test_generated_passwords_differ_and_avoid_look_alike_characters() -> None:
    made = {passwords.generate() for _ in range(50)}
    assert len(made) == 50
    assert all(len(p) == passwords.LENGTH and not set(p) & set("0O1lI") for p in made)


def test_two_hashes_of_one_password_have_their_own_salts() -> None:
    assert passwords.dovecot_hash("same") != passwords.dovecot_hash("same")


def test_the_dkim_selector_names_the_month_the_key_was_made() -> None:
    assert dkim.selector_for(datetime(2026, 11, 30, tzinfo=UTC)) == "tonle202611"
    assert dkim.selector_for(datetime(2027, 1, 2, tzinfo=UTC)) == "tonle202701"


def test_a_dkim_key_survives_encryption_and_its_public_half_verifies_its_signatures(secret_key: None) -> None:
    key = dkim.generate(now=datetime(2026, 11, 30, tzinfo=UTC))
    stored = secrets.encrypt(key.private_key_pem)
    assert "PRIVATE KEY" not in stored
    restored = serialization.load_pem_private_key(secrets.decrypt(stored).encode(), password=None)
    assert isinstance(restored, rsa.RSAPrivateKey) and restored.key_size == 2048
    published = serialization.load_der_public_key(base64.b64decode(key.public_key))
    assert isinstance(published, rsa.RSAPublicKey)
    signature = restored.sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    published.verify(signature, b"message", padding.PKCS1v15(), hashes.SHA256())  # raises if it does not match
    assert dkim.public_key_of(secrets.decrypt(stored)) == key.public_key
    assert dkim.dns_record(key) == f"v=DKIM1; k=rsa; p={key.public_key}"
    assert key.private_key_pem not in repr(key)
