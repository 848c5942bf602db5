"""Variables for Ansible as data that Ansible never templates.

Ansible renders Jinja in every string it is given as a variable (extra vars, inventory vars),
so a ministry's `{{ lookup('pipe', ...) }}` in an order parameter, a file name or a value a
server reported would run on the controller. Ansible documents one marker that turns that off
for a value, wherever it flows afterwards: the `!unsafe` YAML tag. Every string we hand over,
mapping keys included, is written with it; numbers, booleans and null stay as they are.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

UNSAFE_TAG = "!unsafe"


class _UnsafeDumper(yaml.SafeDumper):
    """A YAML dumper that tags every string `!unsafe` and never emits aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Double quotes escape every character YAML could otherwise read as syntax.
    return dumper.represent_scalar(UNSAFE_TAG, value, style='"')


def _represent_other(dumper: yaml.SafeDumper, value: Any) -> yaml.Node:
    # Paths, UUIDs, dates ...: handed over as their text, never as objects Ansible would rebuild.
    return _represent_str(dumper, str(value))


_UnsafeDumper.add_representer(str, _represent_str)
_UnsafeDumper.add_multi_representer(object, _represent_other)
for _kind in (bool, int, float, type(None)):
    _UnsafeDumper.add_representer(_kind, yaml.SafeDumper.yaml_representers[_kind])
_UnsafeDumper.add_representer(dict, yaml.SafeDumper.represent_dict)
_UnsafeDumper.add_representer(list, yaml.SafeDumper.represent_list)
_UnsafeDumper.add_representer(tuple, yaml.SafeDumper.represent_list)


def _plain(value: Any) -> Any:
    """Mappings and sequences of any kind as dicts and lists, so the dumper sees only those."""
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, (str, int, float, bool)) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def dump(variables: Mapping[str, Any]) -> str:
    """YAML for `-e @file` or an inventory file, with every string tagged `!unsafe`."""
    text: str = yaml.dump(
        _plain(variables), Dumper=_UnsafeDumper, sort_keys=True, allow_unicode=True, default_flow_style=False
    )
    return text


def write(path: Path, variables: Mapping[str, Any], *, owner: tuple[int, int] | None = None) -> Path:
    """Write `dump(variables)` to a new file only its owner can read (it may hold secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        if owner is not None:
            os.fchown(handle.fileno(), *owner)
        handle.write(dump(variables))
    return path
