"""The runner's Ansible strategy settings point at a strategy Ansible can load."""

from pathlib import Path

import pytest

from orchestrator.ansible.runner import strategy_environment

pytestmark = pytest.mark.unit


def test_mitogen_is_found_where_it_is_installed() -> None:
    env = strategy_environment("mitogen")
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert (Path(env["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()


def test_linear_is_ansibles_own() -> None:
    assert strategy_environment("linear") == {"ANSIBLE_STRATEGY": "linear"}
