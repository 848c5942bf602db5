"""Quota arithmetic on resource vectors. Pure: no I/O."""

from collections.abc import Mapping

RESOURCES: tuple[str, ...] = (
    "vcpu",
    "ram_gb",
    "storage_gb",
    "object_gb",
    "public_ips",
    "mailboxes",
    "rack_units",
)

ResourceVector = dict[str, int]


def empty() -> ResourceVector:
    return {name: 0 for name in RESOURCES}


def normalise(vector: Mapping[str, int]) -> ResourceVector:
    unknown = set(vector) - set(RESOURCES)
    if unknown:
        raise ValueError(f"unknown quota resources: {', '.join(sorted(unknown))}")
    return {name: int(vector.get(name, 0)) for name in RESOURCES}


def add(a: Mapping[str, int], b: Mapping[str, int]) -> ResourceVector:
    return {name: int(a.get(name, 0)) + int(b.get(name, 0)) for name in RESOURCES}


def subtract(a: Mapping[str, int], b: Mapping[str, int]) -> ResourceVector:
    # Never below zero: a release that outruns its reservation must not mint quota.
    return {name: max(0, int(a.get(name, 0)) - int(b.get(name, 0))) for name in RESOURCES}


def shortfall(
    *, limits: Mapping[str, int], used: Mapping[str, int], cost: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """Resources the cost would push over the limit, with what is left of each."""
    over: dict[str, dict[str, int]] = {}
    for name in RESOURCES:
        wanted = int(cost.get(name, 0))
        if wanted <= 0:
            continue
        remaining = int(limits.get(name, 0)) - int(used.get(name, 0))
        if wanted > remaining:
            over[name] = {"requested": wanted, "remaining": max(0, remaining)}
    return over
