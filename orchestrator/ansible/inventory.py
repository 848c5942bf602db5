"""The Ansible inventory built from a stack's `hosts` output. Pure: no I/O."""

from typing import Any


def inventory(hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`{name: {address, groups, user, ...}}` -> an ansible-runner inventory dict."""
    all_hosts: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for name, spec in sorted(hosts.items()):
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
            groups.setdefault(group, {"hosts": {}})["hosts"][name] = {}
    return {"all": {"hosts": all_hosts, "children": groups}}
