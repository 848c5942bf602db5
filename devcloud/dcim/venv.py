"""Nautobot's own virtualenv, `<data>/dcim-venv`, from `devcloud/dcim/requirements.txt`.

Separate from the cloud's and Designate's venvs so Nautobot's Django pins never fight
OpenStack's. Rebuilt only when the requirements, the helper scripts or the Python version change
(a hash stamp in the venv). uv first (parallel downloads: ~20 s for Nautobot's 130 packages),
pip when uv fails.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud.dcim.common import DcimError, run
from devcloud.dcim.layout import REQUIREMENTS, Layout

if TYPE_CHECKING:
    from devcloud.context import Context

HERE = Path(__file__).resolve().parent
#: The module names our scripts get inside the venv (`python -m tonle_nautobot_seed`).
SEED_MODULE = "tonle_nautobot_seed"
MIGRATE_MODULE = "tonle_nautobot_migrate"
#: module name inside the venv -> its source here
HELPERS = {SEED_MODULE: HERE / "seed.py", MIGRATE_MODULE: HERE / "migrate.py"}
STAMP = ".tonle-dcim-stamp"
#: The installer; the same pin as the cloud's and Designate's venvs.
UV = "uv==0.13.8"


def wanted_stamp() -> str:
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    for source in HELPERS.values():
        digest.update(source.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def current(lay: Layout) -> bool:
    stamp = lay.venv / STAMP
    return lay.python.exists() and stamp.exists() and stamp.read_text().strip() == wanted_stamp()


def ensure(ctx: Context, lay: Layout) -> bool:
    """Install or refresh the venv; returns True when it had to."""
    if current(lay):
        return False
    ctx.progress("dcim", f"installing Nautobot into {lay.venv} (uv; pip if uv fails)")
    if not lay.python.exists():
        base = getattr(sys, "_base_executable", None) or sys.executable
        run([base, "-m", "venv", str(lay.venv)], "creating the Nautobot venv")
    pip = [str(lay.python), "-m", "pip", "--disable-pip-version-check", "-q"]
    try:
        run([*pip, "install", UV], "pip install of uv")
        run(
            [str(lay.venv_bin("uv")), "pip", "install", "-q", "--python", str(lay.python), "-r", str(REQUIREMENTS)],
            "uv pip install of devcloud/dcim/requirements.txt",
            timeout=1800,
        )
    except DcimError as exc:
        ctx.progress("dcim", f"uv failed, trying pip: {str(exc).splitlines()[0]}")
        run([*pip, "install", "-r", str(REQUIREMENTS)], "pip install of devcloud/dcim/requirements.txt", timeout=3600)
    purelib = run(
        [str(lay.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        "locating the venv's site-packages",
    ).strip()
    for module, source in HELPERS.items():
        shutil.copyfile(source, Path(purelib) / f"{module}.py")
    (lay.venv / STAMP).write_text(wanted_stamp() + "\n")
    return True
