"""The Ansible inventory built from a stack's `hosts` output. Pure: no I/O.

Stack outputs are data a stack program derived from an order (and a cloud reported back), so
names and values are treated as hostile: host and group names must be plain names (they become
`inventory_hostname` and group names, which Ansible does not let us mark unsafe), and every
value is written `!unsafe` by the runner (see `unsafe.py`).
"""

import re
from typing import Any

HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def inventory(hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`{name: {address, groups, user, ...}}` -> an Ansible YAML inventory."""
    all_hosts: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for name, spec in sorted(hosts.items()):
        if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
            raise ValueError(f"the stack outputs a host name that is not a plain name: {str(name)[:80]!r}")
        if not spec.get("address"):
            raise ValueError(f"host '{name}' has no address in the stack outputs")
        variables = {
            "ansible_host": spec["address"],
            "ansible_user": spec.get("user", "debian"),
            "private_address": spec.get("private_address", spec["address"]),
        }
        variables.update({k: v for k, v in spec.items() if k not in ("address", "user", "groups", "private_address")})
        all_hosts[name] = variables
        for group in spec.get("groups", []):
            if not isinstance(group, str) or not GROUP_NAME.fullmatch(group):
                raise ValueError(f"host '{name}' names a group that is not a plain name: {str(group)[:80]!r}")
            groups.setdefault(group, {"hosts": {}})["hosts"][name] = {}
    return {"all": {"hosts": all_hosts, "children": groups}}
