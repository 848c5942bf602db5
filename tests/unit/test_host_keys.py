"""SSH host keys from a server's console: the parser takes hostile text (the guest writes its
console), pinning keeps what was learned, and known_hosts lines are made only of checked parts."""

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cloud.hostkeys import (
    BEGIN,
    END,
    MAX_KEYS,
    Learned,
    fingerprint,
    known_hosts,
    known_hosts_address,
    parse_console,
    parse_key,
    pin,
)
from orchestrator.ports import StepFailed

pytestmark = [pytest.mark.unit, pytest.mark.security]


def ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def key(kind: str = "ssh-ed25519", body: bytes | None = None) -> str:
    blob = ssh_string(kind.encode()) + ssh_string(body if body is not None else os.urandom(32))
    return f"{kind} {base64.b64encode(blob).decode()}"


def block(*lines: str) -> str:
    return "\n".join([BEGIN, *lines, END])


def test_a_cloud_init_block_among_boot_messages_gives_its_keys() -> None:
    ed25519, ecdsa = key(), key("ecdsa-sha2-nistp256", os.urandom(65))
    console = (
        "[  OK  ] Started ssh.service\r\n"
        "tonle-init: early phase done\r\n"
        f"{block(ed25519 + ' root@web-1', ecdsa)}\r\n".replace("\n", "\r\n")
        + "Debian GNU/Linux 12 web-1 console\r\n"
    )
    assert parse_console(console) == [ed25519, ecdsa]  # the comment is dropped


def test_no_block_or_an_unfinished_one_gives_nothing_yet() -> None:
    assert parse_console("") == []
    assert parse_console("booting...\n" + BEGIN + "\n" + key() + "\n") == []
    assert parse_console(END + "\n" + key() + "\n" + BEGIN) == []


def test_the_first_complete_block_counts_and_later_ones_cannot_add_keys() -> None:
    first, forged = key(), key()
    assert parse_console(block(first) + "\nlater, a process prints\n" + block(forged)) == [first]
    # A block cut short by another BEGIN starts again there.
    assert parse_console(f"{BEGIN}\n{forged}\n{block(first)}") == [first]


@pytest.mark.parametrize(
    "line",
    [
        "ssh-dss " + key("ssh-dss").split()[1],  # not a type we accept
        "evil-type " + key().split()[1],
        "ssh-ed25519 AAAA$$$$",  # not base64
        "ssh-ed25519 " + key().split()[1][:-3],  # truncated: bad padding
        "ssh-rsa " + key().split()[1],  # the blob says it is ed25519
        "ssh-ed25519 " + base64.b64encode(b"\xff\xff\xff\xff").decode(),  # length beyond the blob
        "ssh-ed25519 " + base64.b64encode(b"").decode(),
        "ssh-ed25519",
        "@cert-authority * " + key(),  # known_hosts markers are not keys
        "* " + key(),
        "ssh-ed25519 " + "A" * 5000,  # oversized
        "ssh-ed25519 \uff21\uff21\uff21\uff21",  # non-ASCII look-alikes (fullwidth A)
        "{{ lookup('pipe', 'id') }}",
    ],
    # Names that stay the same from run to run (the keys are random), for -k and reruns.
    ids=["dss", "unknown-type", "not-base64", "bad-padding", "type-mismatch", "length-beyond-blob", "empty-blob",
         "no-blob", "cert-authority-marker", "host-pattern", "oversized", "fullwidth", "template"],
)  # fmt: skip
def test_anything_but_a_valid_key_of_a_known_type_is_ignored(line: str) -> None:
    good = key()
    assert parse_key(line) is None
    assert parse_console(block(line, good)) == [good]
    assert parse_console(block(line)) == []


def test_keys_are_deduplicated_and_capped() -> None:
    keys = [key() for _ in range(MAX_KEYS + 5)]
    assert parse_console(block(keys[0], keys[0], *keys[1:])) == keys[:MAX_KEYS]


def test_a_huge_console_is_parsed_quickly_within_its_cap() -> None:
    good = key()
    noise = ("x" * 200 + "\n") * 50_000  # 10 MB of boot noise, then the block beyond the cap
    started = time.monotonic()
    assert parse_console(noise + block(good)) == []
    assert parse_console(block(good) + "\n" + noise) == [good]
    assert time.monotonic() - started < 2


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_a_real_key_parses_and_its_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    path = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    public = path.with_suffix(".pub").read_text().strip()
    parsed = parse_key(public)
    assert parsed == " ".join(public.split()[:2])
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(path.with_suffix(".pub"))], capture_output=True, text=True)
    assert fingerprint(parsed) == listed.stdout.split()[1]


@pytest.mark.parametrize(
    "address",
    ["", None, "*", "10.0.0.5,evil.example", "10.0.0.5 ssh-ed25519 AAAA", "web\n10.0.0.6", "[10.0.0.5]:22", "a" * 300],
)
def test_known_hosts_refuses_an_address_that_could_widen_the_pin(address: Any) -> None:
    with pytest.raises(StepFailed):
        known_hosts_address(address)


def test_known_hosts_lines_name_the_address_ansible_connects_to() -> None:
    k1, k2 = key(), key("ecdsa-sha2-nistp256", os.urandom(65))
    pins = {"web": {"server_id": "s1", "keys": [k1, k2]}, "db": {"server_id": "s2", "keys": [k1]}}
    hosts = {"web": {"address": "203.0.113.10"}, "db": {"address": "Db.Example.gov"}}
    assert known_hosts(pins, hosts) == f"db.example.gov {k1}\n203.0.113.10 {k1}\n203.0.113.10 {k2}\n"
    assert known_hosts({}, {}) == ""


class Learner:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, spec: Mapping[str, Any]) -> Learned:
        self.asked.append(host)
        return Learned(server_id=str(spec.get("server_id") or "found-by-address"), keys=[key()])


def test_keys_are_learned_once_and_kept_for_the_same_server() -> None:
    learner = Learner()
    hosts = {"web": {"address": "203.0.113.10", "server_id": "s1"}}
    first = pin(pins={}, hosts=hosts, learn=learner)
    assert first.learned == ["web"] and not first.replaced
    # Later runs (day-2, a resize that keeps the server and its disk): nothing learned again.
    again = pin(pins=first.pins, hosts=hosts, learn=learner)
    assert again.learned == [] and again.pins["web"]["keys"] == first.pins["web"]["keys"]
    # A stack from before hosts carried a server_id keeps its pin too.
    legacy = pin(pins=first.pins, hosts={"web": {"address": "203.0.113.10"}}, learn=learner)
    assert legacy.learned == []
    assert learner.asked == ["web"]


def test_a_replaced_server_is_learned_from_its_own_console_and_reported() -> None:
    learner = Learner()
    first = pin(pins={}, hosts={"web": {"address": "a", "server_id": "s1"}}, learn=learner)
    replaced = pin(pins=first.pins, hosts={"web": {"address": "a", "server_id": "s2"}}, learn=learner)
    assert replaced.learned == ["web"] and replaced.replaced == ["web"]
    assert replaced.pins["web"]["server_id"] == "s2"
    assert replaced.pins["web"]["keys"] != first.pins["web"]["keys"]


def test_a_stored_pin_never_becomes_more_than_its_own_known_hosts_line() -> None:
    good = key()
    pins = {"web": {"keys": [good, f"{key()}\n* {key()}", "@revoked * " + key()]}}
    assert known_hosts(pins, {"web": {"address": "203.0.113.10"}}) == f"203.0.113.10 {good}\n"
