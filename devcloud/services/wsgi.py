"""Run an OpenStack API app under uWSGI (the deployment those projects test with).

uWSGI sets `sys.argv` from `pyargv` only, so its own arguments never reach oslo.config:
services that read `sys.argv` (Neutron, Cinder) get `--config-file` from there, the others
find their config through their `OS_*_CONFIG_DIR` / `OS_*_CONFIG_FILES` variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from devcloud.services.common import render

if TYPE_CHECKING:
    from devcloud.context import Context


def start_api(
    ctx: Context,
    name: str,
    *,
    module: str,
    port: int,
    env: Mapping[str, str] | None = None,
    pyargv: Sequence[str] = (),
    processes: int = 1,
    threads: int = 4,
) -> None:
    ini = render(
        "uwsgi.ini",
        ctx.etc_dir / name / "uwsgi.ini",
        name=name,
        port=port,
        module=module,
        venv=ctx.venv,
        processes=processes,
        threads=threads,
        pyargv=" ".join(pyargv),
    )
    ctx.start_process(name, [str(ctx.venv_bin("uwsgi")), "--ini", str(ini)], env=env)
