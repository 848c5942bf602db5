"""The shared components' own rules: names, sizes, DNS text, the hardened group, and programs
that survive a preview, where the cloud's answers are not known yet."""

import json
import re
from typing import Any

import pytest
import yaml

from stacks.components.cloud_init import IDENTITY_FILE, user_data
from stacks.components.dns import fqdn, txt
from stacks.components.security import PublicPort, hardened_security_group
from stacks.config import Sizes
from stacks.labels import Labels
from tests.unit.stacks.harness import REQUEST_ID, SERVICE_ID, every_case, run_preview, run_program

pytestmark = pytest.mark.unit

S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def labels(ministry: str = "health", name: str = "portal") -> Labels:
    return Labels(
        ministry=ministry,
        service_id=SERVICE_ID,
        request_id=REQUEST_ID,
        offering="web-hosting",
        service_name=name,
    )


def test_names_carry_ministry_service_name_and_short_id() -> None:
    assert labels().name("net") == "health-portal-6f1c2a4e-net"


@pytest.mark.parametrize(("ministry", "name"), [("health", "portal"), ("m" * 32, "n" + "x" * 30)])
def test_bucket_and_host_names_stay_valid_for_the_longest_codes(ministry: str, name: str) -> None:
    bucket = labels(ministry, name).bucket()
    assert S3_BUCKET_NAME.match(bucket) and bucket.endswith("-6f1c2a4e")
    assert HOSTNAME.match(labels(ministry, name).hostname("web"))


def test_neutron_tags_hold_one_fact_each_and_no_commas() -> None:
    tags = labels().tags
    assert "tonle" in tags and f"service={SERVICE_ID}" in tags
    assert not any("," in tag for tag in tags)


def test_swift_metadata_keys_are_written_as_swift_returns_them() -> None:
    assert all(re.fullmatch(r"(?:[A-Z][a-z]*-?)+", key) for key in labels().header_metadata)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "20"])
def test_sizes_must_be_positive_whole_numbers(bad: Any) -> None:
    with pytest.raises(ValueError, match="volume_gb"):
        Sizes({"volume_gb": bad}).number("volume_gb")


def test_sizes_from_json_floats_become_integers() -> None:
    assert Sizes({"volume_gb": 20.0}).number("volume_gb") == 20


def test_dns_names_are_absolute_and_txt_data_is_quoted() -> None:
    assert fqdn("portal.health.gov.example") == "portal.health.gov.example."
    assert fqdn("portal.health.gov.example.") == "portal.health.gov.example."
    assert txt('v=spf1 "mx" -all') == '"v=spf1 \\"mx\\" -all"'


def test_ssh_can_never_be_made_a_public_port() -> None:
    def program() -> None:
        hardened_security_group(labels(), management_cidr="10.20.0.0/24", public_ports=[PublicPort(22, "ssh")])

    with pytest.raises(ValueError, match="SSH is never a public port"):
        run_program(program, {})


@pytest.mark.parametrize("case", every_case(), ids=lambda case: case.id)
def test_every_program_previews_with_unknown_cloud_answers(case: Any) -> None:
    """In a preview the engine knows no ids, addresses or keys yet; programs must not need them."""
    run = run_preview(case.program(), case.config())
    # An `s3_bucket` offering's bucket is made by the orchestrator, not its program.
    assert run.resources or case.offering.get("s3_bucket")
    assert set(run.outputs) == {"hosts", "endpoints", "credentials"}


NEUTRON_TAG_MAX = 60  # neutron's tagging extension


@pytest.mark.parametrize(("ministry", "name"), [("health", "portal"), ("m" * 32, "n" + "x" * 30)])
def test_neutron_tags_fit_neutrons_limit(ministry: str, name: str) -> None:
    assert all(len(tag) <= NEUTRON_TAG_MAX for tag in labels(ministry, name).tags)


def test_user_data_tells_the_server_whose_it_is() -> None:
    config = yaml.safe_load(user_data(labels(), hostname="portal-web-6f1c2a4e", ssh_public_key="ssh-ed25519 AAAA k\n"))
    (identity,) = [entry for entry in config["write_files"] if entry["path"] == IDENTITY_FILE]
    assert json.loads(identity["content"]) == {"ministry": "health", "offering": "web-hosting", "service": SERVICE_ID}
    assert config["ssh_authorized_keys"] == ["ssh-ed25519 AAAA k"]
    assert config["hostname"] == "portal-web-6f1c2a4e"
