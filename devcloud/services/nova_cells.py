"""Nova's databases and cells in ONE process; runs inside the cloud venv.

`python -m devcloud.services.nova_cells <nova.conf> <cell0 database url>` does what
`nova-manage api_db sync`, `cell_v2 map_cell0`, `cell_v2 create_cell --name cell1` and
`db sync` do, in that order and idempotently: each nova-manage run costs 5-15 s of imports.
"""

from __future__ import annotations

import sys

from nova import config, objects
from nova.cmd import manage

#: create_cell's answer when this transport/database pair already has a cell.
CELL_EXISTS = 2


def main(conf_file: str, cell0_url: str) -> int:
    config.parse_args(["nova-manage", "--config-file", conf_file])
    objects.register_all()
    cells = manage.CellV2Commands()
    print("api_db sync", flush=True)
    if manage.ApiDbCommands().sync():
        return 1
    print("map_cell0", flush=True)
    if cells.map_cell0(database_connection=cell0_url):
        return 1
    print("create_cell cell1", flush=True)
    if cells.create_cell(name="cell1") not in (0, None, CELL_EXISTS):
        return 1
    print("db sync (cell0 and cell1)", flush=True)
    return 1 if manage.DbCommands().sync() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
