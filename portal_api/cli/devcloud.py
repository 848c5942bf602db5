"""`tonle devcloud up|down|status`: the local data centre, run as its own program.

The orchestrator never imports `devcloud`; this only starts it, as an operator would.
"""

import os
import subprocess
import sys

import typer

from orchestrator.config import PROJECT_ROOT, get_settings

app = typer.Typer(no_args_is_help=True)


def _devcloud(verb: str) -> None:
    if not (PROJECT_ROOT / "devcloud" / "__main__.py").exists():
        typer.echo("the local data centre is not part of this installation", err=True)
        raise typer.Exit(2)
    env = {**os.environ, "TONLE_DATA_DIR": str(get_settings().resolved_data_dir)}
    raise typer.Exit(subprocess.call([sys.executable, "-m", "devcloud", verb], cwd=PROJECT_ROOT, env=env))


@app.command()
def up() -> None:
    """Start the local data centre (idempotent)."""
    _devcloud("up")


@app.command()
def down() -> None:
    """Stop the local data centre."""
    _devcloud("down")


@app.command()
def status() -> None:
    """Show each service of the local data centre; non-zero exit if any is down."""
    _devcloud("status")
