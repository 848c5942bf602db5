"""Decides what a registration means for a resource: create, same, update or replace.

The rules follow Pulumi's engine with the OpenStack provider: a change to a property the
provider marks force-new (terraform-provider-openstack's `ForceNew`) or listed in
`replace_on_changes` replaces the resource; any other change updates it in place;
`ignore_changes` keeps the checkpoint's value; a different provider replaces it.
"""

from dataclasses import dataclass
from typing import Any, Literal

from pulumi_embedded.protocol import has_unknown, reveal

Kind = Literal["create", "same", "update", "replace"]


@dataclass(frozen=True)
class Diff:
    kind: Kind
    changed: tuple[str, ...] = ()  # top-level input names whose value differs
    replace_keys: tuple[str, ...] = ()  # the subset of `changed` that forces replacement

    @property
    def mutates(self) -> bool:
        return self.kind != "same"


def apply_ignore_changes(old: dict[str, Any], new: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """`new` with the value at each ignored path taken from `old` (absent in `old`: left as declared)."""
    result = _copy(new)
    for path in paths:
        parts = _split(path)
        found, value = _get(old, parts)
        if found:
            _set(result, parts, value)
    return result


def compute(
    old_inputs: dict[str, Any] | None,
    new_inputs: dict[str, Any],
    *,
    force_new: frozenset[str],
    replace_on_changes: list[str] | tuple[str, ...] = (),
    provider_changed: bool = False,
) -> Diff:
    if old_inputs is None:
        return Diff("create")
    changed = tuple(
        sorted(k for k in set(old_inputs) | set(new_inputs) if _differs(old_inputs.get(k), new_inputs.get(k)))
    )
    replace_all = "*" in replace_on_changes
    triggers = force_new | {_split(p)[0] for p in replace_on_changes if p != "*"}
    replace_keys = tuple(k for k in changed if replace_all or k in triggers)
    if provider_changed:
        return Diff("replace", changed, replace_keys or ("provider",))
    if not changed:
        return Diff("same")
    if replace_keys:
        return Diff("replace", changed, replace_keys)
    return Diff("update", changed)


def _differs(old: Any, new: Any) -> bool:
    if has_unknown(new):
        return True
    return not _equal(reveal(old), reveal(new))


def _equal(a: Any, b: Any) -> bool:
    # Struct carries numbers as doubles: 1 and 1.0 are the same declaration.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        keys = {k for k, v in a.items() if v is not None} | {k for k, v in b.items() if v is not None}
        return all(_equal(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    # An absent property and an empty collection declare the same thing.
    if a in (None, [], {}) and b in (None, [], {}):
        return True
    return bool(a == b)


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.replace("]", "").replace("[", ".").split("."):
        if piece == "":
            continue
        parts.append(int(piece) if piece.isdigit() else piece.strip('"'))
    return parts


def _get(value: Any, parts: list[str | int]) -> tuple[bool, Any]:
    for part in parts:
        in_list = isinstance(part, int) and isinstance(value, list) and part < len(value)
        in_dict = isinstance(part, str) and isinstance(value, dict) and part in value
        if in_list or in_dict:
            value = value[part]
        else:
            return False, None
    return True, value


def _set(value: Any, parts: list[str | int], new: Any) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return
            if last:
                value[part] = new
            else:
                value = value[part]
        else:
            if not isinstance(value, dict):
                return
            if last:
                value[part] = new
            else:
                value = value.setdefault(part, {})


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
