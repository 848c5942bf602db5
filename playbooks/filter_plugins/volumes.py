"""`datadir_state`: what a data directory holds before a volume is mounted over it.

Used by the cms role (MariaDB's /var/lib/mysql) to decide whether the database volume may take
the directory's place: a directory MariaDB never used (`empty`, the base image before the
install), one holding only what installing MariaDB made (`fresh`, a baked image: it may move
onto the volume), or one holding a database of an order (`in use`: never moved or hidden
silently; moving data is an operator's job).
"""

from collections.abc import Iterable
from typing import Any

# What `mariadb-install-db` makes; `lost+found` is a filesystem's own; `#...` are MariaDB's
# internal directories (e.g. `#rocksdb`), never a database's.
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "sys", "lost+found"})


def application_databases(directories: Iterable[str]) -> list[str]:
    """The names among a data directory's subdirectories that are databases of an application."""
    return sorted(name for name in directories if name not in SYSTEM_SCHEMAS and not name.startswith("#"))


def datadir_state(directories: Iterable[str]) -> str:
    names = list(directories)
    if application_databases(names):
        return "in use"
    return "fresh" if "mysql" in names else "empty"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"datadir_state": datadir_state, "application_databases": application_databases}
