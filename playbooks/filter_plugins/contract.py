"""`missing_vars`: which dotted paths of the extra-vars contract are absent or empty.

Used by the `contract` role so every playbook fails at its first task with the names of what
the orchestrator did not pass. Returns names only, never values (some are secrets).
"""

from collections.abc import Mapping
from typing import Any


def missing_vars(variables: Mapping[str, Any], paths: list[str]) -> list[str]:
    missing = []
    for path in paths:
        value: Any = variables
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or (isinstance(value, (str, Mapping, list)) and len(value) == 0):
            missing.append(path)
    return missing


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"missing_vars": missing_vars}
