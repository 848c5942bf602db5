"""DNS names and the suffixes ministries own. Pure functions; no I/O.

A name is "under" a suffix when it is the suffix itself or ends in `.` + suffix: the match is
on label boundaries, so `evil-health.gov.example` is not under `health.gov.example`. Names
compare case-insensitively and without a trailing dot, as DNS does.
"""

import re
from collections.abc import Iterable, Sequence

MAX_NAME = 253
# Letters, digits and inner hyphens (RFC 1123 host names). No underscores: these names get
# A records and certificates, not SRV/TXT owners.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


def normalise(name: str) -> str:
    """Lower case, without the trailing dot of an absolute name."""
    lowered = name.lower()
    return lowered[:-1] if lowered.endswith(".") else lowered


def problem_with_name(name: str) -> str | None:
    """Why `name` is not a usable DNS name (at least two labels), or None when it is."""
    normal = normalise(name)
    if not normal:
        return "is empty"
    if len(normal) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    labels = normal.split(".")
    if len(labels) < 2:
        return "needs at least two labels (e.g. `health.gov.example`)"
    for label in labels:
        if not _LABEL.fullmatch(label):
            return f"has an invalid label {label!r} (letters, digits and inner hyphens, 1 to 63 characters)"
    if labels[-1].isdigit():
        # An all-numeric last label makes the name read as an IP address to resolvers and CAs.
        return "cannot end in an all-numeric label"
    return None


def is_under(name: str, suffix: str) -> bool:
    name, suffix = normalise(name), normalise(suffix)
    return name == suffix or name.endswith("." + suffix)


def owning_suffix(name: str, suffixes: Iterable[str]) -> str | None:
    return next((s for s in suffixes if is_under(name, s)), None)


def overlaps(a: str, b: str) -> bool:
    """Whether one suffix is the other or lies under it: then two owners would share names."""
    return is_under(a, b) or is_under(b, a)


def outside(names: Sequence[tuple[str, str]], suffixes: Sequence[str]) -> list[dict[str, str]]:
    """Problems (`field`, `message`) for each (field, name) not under any of `suffixes`."""
    owned = ", ".join(suffixes) if suffixes else "none"
    return [
        {"field": field, "message": f"'{name}' is not under the ministry's DNS suffixes ({owned})"}
        for field, name in names
        if owning_suffix(name, suffixes) is None
    ]
