"""`dpkg_versions`: `{package: version}` of the installed packages among `dpkg-query -W` lines."""

from collections.abc import Iterable
from typing import Any


def dpkg_versions(lines: Iterable[str]) -> dict[str, str]:
    """Lines of `${Package}\\t${Version}\\t${db:Status-Status}`; packages not `installed` (removed
    with their configuration left, half-installed) are not in the image, whatever dpkg remembers."""
    versions: dict[str, str] = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed":
            versions[parts[0]] = parts[1]
    return dict(sorted(versions.items()))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"dpkg_versions": dpkg_versions}
