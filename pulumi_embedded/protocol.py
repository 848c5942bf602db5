"""The wire values of the Pulumi resource-monitor protocol, and conversions to plain Python.

Property values travel as protobuf `Struct`s. Three markers matter to the engine:
- a secret is the map `{SIG_KEY: SECRET_SIG, "value": v}`;
- an unknown (a value computed later, seen in previews) is the string `UNKNOWN`;
- the engine stores a secret at rest as `{SIG_KEY: SECRET_SIG, "ciphertext": "..."}` (Pulumi's
  checkpoint spelling), see `secrets.py`.
In memory the engine keeps values in the wire shape (secrets wrapped), so they round-trip to
the SDK unchanged; `reveal` strips the wrappers before a value reaches the cloud.
"""

from typing import Any

from google.protobuf import json_format, struct_pb2

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python: numbers stay floats, as the SDK sent them."""
    return dict(json_format.MessageToDict(struct))


def to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_normalise_numbers(value))
    return struct


def _normalise_numbers(value: Any) -> Any:
    # Struct holds only doubles; ints from the cloud would otherwise fail `update` for big values.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: _normalise_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise_numbers(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def secret(value: Any) -> dict[str, Any]:
    if is_secret(value):
        return dict(value)
    return {SIG_KEY: SECRET_SIG, "value": value}


def reveal(value: Any) -> Any:
    """The value with every secret wrapper removed (what the cloud API receives)."""
    if is_secret(value):
        return reveal(value.get("value"))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def has_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


def secret_paths(values: dict[str, Any]) -> set[str]:
    """Top-level keys whose value is (or contains) a secret."""
    return {key for key, value in values.items() if _contains_secret(value)}


def _contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


def mark_secret(values: dict[str, Any], keys: set[str] | frozenset[str]) -> dict[str, Any]:
    """The values with the named top-level keys wrapped as secrets."""
    return {k: (secret(reveal(v)) if k in keys and v is not None else v) for k, v in values.items()}


def make_urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    """A resource's URN, qualified by its parent's type as the Pulumi engine does."""
    qualified = type_
    if parent_urn:
        parent_type = parent_urn.split("::")[2]
        if not parent_type.endswith("pulumi:pulumi:Stack"):
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def urn_name(urn: str) -> str:
    return urn.split("::", 3)[3]


def urn_type(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]
