"""`make test`'s two pytest processes: what their exit statuses add up to, and the lock that keeps
the cloud lane's `devcloud down` from pulling the apt-cacher-ng from under the other lane's machines."""

import threading
import time
from pathlib import Path

import pytest

from tests.cloud import conftest as cloud_conftest
from tests.support.two_lanes import NO_TESTS_RAN, outcome

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([0, 0], 0),
        ([NO_TESTS_RAN, 0], 0),  # PYTEST_ARGS selected nothing in the cloud tier
        ([0, NO_TESTS_RAN], 0),
        ([NO_TESTS_RAN, NO_TESTS_RAN], NO_TESTS_RAN),  # nothing ran at all
        ([1, 0], 1),  # a failing cloud tier fails the whole
        ([0, 1], 1),
        ([NO_TESTS_RAN, 2], 2),  # an interrupted lane beside one that selected nothing
        ([3, 1], 3),
    ],
)
def test_the_suite_passes_only_when_no_lane_failed(codes: list[int], expected: int) -> None:
    assert outcome(codes) == expected


def test_a_cloud_goes_down_only_once_the_other_lanes_machines_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloud_conftest, "MACHINES_LOCK", tmp_path / "machines-in-use.lock")
    events: list[str] = []
    holding = threading.Event()

    def lab_module() -> None:
        with cloud_conftest.machines_in_use():
            holding.set()
            time.sleep(0.5)
            events.append("machines gone")

    lab = threading.Thread(target=lab_module)
    lab.start()
    assert holding.wait(5)
    with cloud_conftest.machines_released():
        events.append("cloud going down")
    lab.join()
    assert events == ["machines gone", "cloud going down"]


def test_machines_that_outstay_the_wait_are_named_and_the_cloud_goes_down_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloud_conftest, "MACHINES_LOCK", tmp_path / "machines-in-use.lock")
    monkeypatch.setattr(cloud_conftest, "MACHINES_WAIT_S", 1)
    with (
        cloud_conftest.machines_in_use(),  # a lab that stays up
        pytest.warns(UserWarning, match="still run after 1 s"),
        cloud_conftest.machines_released(),
    ):
        pass
