"""The cloud's own virtualenv: created with `python3 -m venv`, filled from the pinned freeze.

Reinstalled only when `devcloud/requirements.txt` changed (its hash is stamped in the venv).
Besides the packages, two small files make our code visible to the services:
- `tonle_devcloud.pth` puts the repository root on `sys.path` (the ML2 and Nova drivers);
- a `tonle_devcloud-0.dist-info` registers the ML2 mechanism driver as an entry point,
  because Neutron loads mechanism drivers only by entry-point name.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devcloud.services.common import StageError, run_logged

if TYPE_CHECKING:
    from devcloud.context import Context

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"
UV = "uv==0.13.8"
ML2_ENTRY_POINT = "tonle_bridge = devcloud.services.neutron_ml2:TonleBridgeMechanismDriver"


def _digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def _stamp(ctx: Context) -> Path:
    return ctx.venv / ".requirements.sha256"


def _site_packages(ctx: Context) -> Path:
    found = sorted(ctx.venv.glob("lib/python3*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages in {ctx.venv}")
    return found[0]


def _base_python() -> str:
    """A real interpreter to build the venv from (not the project venv's own python)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    if Path(base).exists():
        return base
    return shutil.which("python3") or sys.executable


def is_current(ctx: Context) -> bool:
    stamp = _stamp(ctx)
    return stamp.exists() and stamp.read_text().strip() == _digest()


def ensure(ctx: Context) -> bool:
    """Install the venv if missing or stale. Returns True if it (re)installed."""
    if is_current(ctx) and (ctx.venv / "bin" / "python").exists():
        _link_repo(ctx)
        return False
    if not (ctx.venv / "bin" / "python").exists():
        ctx.venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([_base_python(), "-m", "venv", str(ctx.venv)], check=True)
    python = str(ctx.venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    # uv downloads and installs in parallel: 1m50s from a cold cache here, against 5m40s for
    # pip. Every pin is a wheel: uWSGI comes as pyuwsgi, its manylinux build, because the
    # `uWSGI` sdist compiled for 40-55 s of CPU on a fresh machine, beside everything else.
    run_logged(ctx, "pip", [*pip, "install", "-q", UV])
    try:
        run_logged(
            ctx,
            "pip",
            # Byte-compile now (beside the base image build) rather than in every service's first start.
            [
                str(ctx.venv_bin("uv")),
                "pip",
                "install",
                "--compile-bytecode",
                "--python",
                python,
                "-r",
                str(REQUIREMENTS),
            ],
            timeout=1800,
        )
    except StageError:
        ctx.progress("venv", f"uv failed (see {ctx.log_path('pip')}); trying pip")
        run_logged(ctx, "pip", [*pip, "install", "-q", "-r", str(REQUIREMENTS)], timeout=1800)
    _link_repo(ctx)
    _stamp(ctx).write_text(_digest() + "\n")
    return True


def _link_repo(ctx: Context) -> None:
    site = _site_packages(ctx)
    (site / "tonle_devcloud.pth").write_text(f"{ctx.repo_root}\n")
    dist = site / "tonle_devcloud-0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tonle-devcloud\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[neutron.ml2.mechanism_drivers]\n{ML2_ENTRY_POINT}\n")
    (dist / "RECORD").write_text("")
