"""`make test`'s two pytest processes: what their exit statuses add up to."""

import pytest

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
