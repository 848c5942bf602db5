"""Designate's own virtualenv, `<data>/dns-venv`, from `devcloud/dns/requirements.txt`.

Separate from the cloud venv so Designate's pins never fight Nova's or Neutron's. Rebuilt only
when the requirements, the shim or the Python version change (a hash stamp in the venv).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud.dns.layout import Layout
from devcloud.dns.waiting import DnsError

if TYPE_CHECKING:
    from devcloud.context import Context

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
SHIM_SOURCE = HERE / "shim.py"
#: The module name the shim gets inside the venv (`python -m tonle_designate_shim ...`).
SHIM_MODULE = "tonle_designate_shim"
STAMP = ".tonle-dns-stamp"
#: The installer; the same pin as the cloud venv's (devcloud/services/venv.py).
UV = "uv==0.13.8"


def wanted_stamp() -> str:
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    digest.update(SHIM_SOURCE.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def current(lay: Layout) -> bool:
    stamp = lay.venv / STAMP
    return lay.python.exists() and stamp.exists() and stamp.read_text().strip() == wanted_stamp()


def _run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DnsError(f"{what} failed ({' '.join(argv)}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result.stdout


def ensure(ctx: Context, lay: Layout) -> bool:
    """Install or refresh the venv; returns True when it had to (re)install."""
    if current(lay):
        return False
    ctx.progress("dns", f"installing Designate into {lay.venv} (uv; pip if uv fails)")
    if not lay.python.exists():
        # Build from the real interpreter, not from the project venv's python.
        base = getattr(sys, "_base_executable", None) or sys.executable
        _run([base, "-m", "venv", str(lay.venv)], "creating the Designate venv")
    _install(ctx, lay)
    purelib = _run(
        [
            str(lay.python),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        "locating the venv's site-packages",
    ).strip()
    shutil.copyfile(SHIM_SOURCE, Path(purelib) / f"{SHIM_MODULE}.py")
    (lay.venv / STAMP).write_text(wanted_stamp() + "\n")
    return True


def _install(ctx: Context, lay: Layout) -> None:
    """uv when it works (parallel downloads, and its cache shares the many packages Designate
    has in common with the cloud venv), pip otherwise."""
    pip = [str(lay.python), "-m", "pip", "--disable-pip-version-check", "-q"]
    try:
        _run([*pip, "install", UV], "pip install of uv")
        _run(
            [str(lay.venv_bin("uv")), "pip", "install", "-q", "--python", str(lay.python), "-r", str(REQUIREMENTS)],
            "uv pip install of devcloud/dns/requirements.txt",
        )
    except DnsError as exc:
        ctx.progress("dns", f"uv failed, trying pip: {str(exc).splitlines()[0]}")
        _run([*pip, "install", "-r", str(REQUIREMENTS)], "pip install of devcloud/dns/requirements.txt")


def shim(lay: Layout, *args: str) -> list[str]:
    """argv running the shim with the venv's python."""
    return [str(lay.python), "-m", SHIM_MODULE, *args]
