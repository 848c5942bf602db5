import pytest
from cryptography.hazmat.primitives import serialization

from orchestrator.services.keys import generate

pytestmark = pytest.mark.unit


def test_key_pair_is_ed25519_in_openssh_format_and_halves_match() -> None:
    pair = generate(comment="tonle-health-web-1")
    assert pair.public_openssh.startswith("ssh-ed25519 ") and pair.public_openssh.endswith(" tonle-health-web-1")
    private = serialization.load_ssh_private_key(pair.private_openssh.encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert pair.public_openssh.startswith(public.decode())
