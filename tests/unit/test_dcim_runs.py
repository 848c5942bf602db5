"""Rack reservations' unit lists as contiguous spans (orchestrator/dcim/nautobot.py `runs`)."""

import pytest

from orchestrator.dcim.nautobot import runs

pytestmark = pytest.mark.unit


def test_units_become_contiguous_runs() -> None:
    assert runs([1, 2, 3, 7]) == [(1, 3), (7, 1)]
    assert runs([42, 40, 41, 5]) == [(5, 1), (40, 3)]
    assert runs([3, 3, 4]) == [(3, 2)]
    assert runs([]) == []
