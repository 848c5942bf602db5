"""Replace-vs-update decisions, with the OpenStack provider's real ForceNew rules."""

import pytest

from pulumi_embedded import diff
from pulumi_embedded.openstack.schema import FORCE_NEW
from pulumi_embedded.protocol import UNKNOWN, secret

pytestmark = pytest.mark.unit

SUBNET = FORCE_NEW["openstack:networking/subnet:Subnet"]
INSTANCE = FORCE_NEW["openstack:compute/instance:Instance"]


def test_no_checkpoint_means_create() -> None:
    assert diff.compute(None, {"name": "a"}, force_new=SUBNET).kind == "create"


def test_a_subnet_cidr_change_replaces() -> None:
    d = diff.compute({"cidr": "10.0.0.0/24", "name": "s"}, {"cidr": "10.1.0.0/24", "name": "s"}, force_new=SUBNET)
    assert (d.kind, d.changed, d.replace_keys) == ("replace", ("cidr",), ("cidr",))


def test_a_flavor_change_updates_and_an_image_change_rebuilds_in_place() -> None:
    assert diff.compute({"flavorName": "m1.small"}, {"flavorName": "m1.large"}, force_new=INSTANCE).kind == "update"
    assert diff.compute({"imageId": "a"}, {"imageId": "b"}, force_new=INSTANCE).kind == "update"
    assert diff.compute({"userData": "a"}, {"userData": "b"}, force_new=INSTANCE).kind == "replace"


def test_numbers_compare_by_value_and_absent_equals_empty() -> None:
    old = {"size": 10, "tags": [], "metadata": {"a": "1"}}
    new = {"size": 10.0, "metadata": {"a": "1", "b": None}}
    assert diff.compute(old, new, force_new=frozenset()).kind == "same"
    assert diff.compute({"flag": True}, {"flag": 1.0}, force_new=frozenset()).kind == "update"


def test_secret_wrapping_alone_is_no_change_but_its_value_is() -> None:
    assert diff.compute({"p": "x"}, {"p": secret("x")}, force_new=frozenset()).kind == "same"
    assert diff.compute({"p": secret("x")}, {"p": secret("y")}, force_new=frozenset()).kind == "update"


def test_an_unknown_value_counts_as_a_change_and_replaces_when_force_new() -> None:
    assert diff.compute({"networkId": "n1"}, {"networkId": UNKNOWN}, force_new=SUBNET).kind == "replace"
    assert diff.compute({"name": "n1"}, {"name": UNKNOWN}, force_new=SUBNET).kind == "update"


def test_replace_on_changes_and_a_different_provider_replace() -> None:
    assert diff.compute({"name": "a"}, {"name": "b"}, force_new=frozenset(), replace_on_changes=["name"]).kind == (
        "replace"
    )
    assert diff.compute({"name": "a"}, {"name": "b"}, force_new=frozenset(), replace_on_changes=["*"]).kind == (
        "replace"
    )
    d = diff.compute({"name": "a"}, {"name": "a"}, force_new=frozenset(), provider_changed=True)
    assert (d.kind, d.replace_keys) == ("replace", ("provider",))


def test_ignore_changes_keeps_the_checkpoint_value_at_nested_paths() -> None:
    old = {"name": "a", "metadata": {"owner": "x", "keep": "1"}, "networks": [{"uuid": "n", "port": "p"}]}
    new = {"name": "b", "metadata": {"owner": "y", "keep": "2"}, "networks": [{"uuid": "n", "port": "q"}]}
    merged = diff.apply_ignore_changes(old, new, ["name", "metadata.owner", "networks[0].port"])
    assert merged == {"name": "a", "metadata": {"owner": "x", "keep": "2"}, "networks": [{"uuid": "n", "port": "p"}]}
    assert new["name"] == "b"  # the declaration itself is untouched
    assert diff.apply_ignore_changes({}, {"name": "b"}, ["name"]) == {"name": "b"}
