import pytest

from orchestrator import quota

pytestmark = pytest.mark.unit


def test_shortfall_names_only_the_resources_that_do_not_fit() -> None:
    limits = {"vcpu": 10, "ram_gb": 20, "public_ips": 1}
    used = {"vcpu": 8, "ram_gb": 4, "public_ips": 1}
    assert quota.shortfall(limits=limits, used=used, cost={"vcpu": 2, "ram_gb": 4}) == {}
    assert quota.shortfall(limits=limits, used=used, cost={"vcpu": 3, "public_ips": 1, "ram_gb": 1}) == {
        "vcpu": {"requested": 3, "remaining": 2},
        "public_ips": {"requested": 1, "remaining": 0},
    }


def test_a_limit_lowered_below_use_reports_nothing_remaining() -> None:
    assert quota.shortfall(limits={"vcpu": 2}, used={"vcpu": 5}, cost={"vcpu": 1}) == {
        "vcpu": {"requested": 1, "remaining": 0}
    }


def test_release_never_goes_below_zero() -> None:
    assert quota.subtract({"vcpu": 1}, {"vcpu": 3})["vcpu"] == 0
    assert quota.add({"vcpu": 1}, {"vcpu": 3, "mailboxes": 2}) == {**quota.empty(), "vcpu": 4, "mailboxes": 2}


def test_unknown_resources_are_refused() -> None:
    with pytest.raises(ValueError, match="gpus"):
        quota.normalise({"gpus": 1})
