"""Server-side commands: serve, worker, run (everything at once), db upgrade."""

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Annotated

import typer

from orchestrator import logs
from orchestrator.config import get_settings

log = logging.getLogger("tonle")

db_app = typer.Typer(no_args_is_help=True)

# uvloop's event loop and httptools' HTTP parser (both C): several times the throughput of the
# pure-Python defaults; the protocol answers a request before refusing garbage after it, as h11
# does. Named here so that a benchmark can put another app on the same stack.
SERVER_STACK = {"loop": "uvloop", "http": "portal_api.http_protocol:HttpToolsProtocol"}


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
    app.command()(run)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (TONLE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (TONLE_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="API processes")] = 1,
) -> None:
    """Serve the REST API."""
    import uvicorn

    settings = get_settings()
    logs.configure(settings.log_level)
    _share_database_with_children()
    uvicorn.run(
        "portal_api.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop=SERVER_STACK["loop"],
        http=SERVER_STACK["http"],
    )


def worker(
    concurrency: Annotated[int | None, typer.Option(help="Operations at once (TONLE_WORKER_CONCURRENCY)")] = None,
) -> None:
    """Run a worker: takes operations from the queue until stopped."""
    from orchestrator.bootstrap import bootstrap
    from orchestrator.jobs.worker import run_worker

    logs.configure(get_settings().log_level)
    run_worker(bootstrap(), concurrency=concurrency, name=f"tonle-worker-{os.getpid()}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply the database migrations."""
    from orchestrator.database import migrate

    logs.configure(get_settings().log_level)
    migrate.upgrade(revision=revision)
    typer.echo(f"database at {revision}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    from orchestrator.database import migrate

    migrate.current()


def run(
    seed: Annotated[bool, typer.Option(help="Seed demo data into an empty database")] = True,
    devcloud: Annotated[
        bool, typer.Option(help="Start the local data centre when no other cloud is configured")
    ] = True,
) -> None:
    """Everything for development: database, migrations, demo data, API and a worker, until Ctrl-C.

    With no cloud configured (no TONLE_CLOUDS_YAML, OS_CLIENT_CONFIG_FILE or OS_CLOUD), the local
    data centre is brought up first, so orders provision for real.
    """
    from orchestrator.database import migrate
    from orchestrator.database.core import database_url
    from orchestrator.seed import seed_demo

    settings = get_settings()
    logs.configure(settings.log_level)
    local_settings: dict[str, str] = {}
    if devcloud and settings.engine != "noop" and not _cloud_configured():
        _start_local_data_centre()
        local_settings = _local_data_centre_settings()
    url = database_url()  # starts the embedded server when no TONLE_DATABASE_URL is set
    migrate.upgrade(url)
    tokens_file = settings.resolved_data_dir / "demo-tokens.json"
    if seed:
        seed_demo(tokens_file)
    if tokens_file.exists():
        typer.echo(f"demo accounts and their tokens: {tokens_file}")
    env = {**local_settings, **os.environ, "TONLE_DATABASE_URL": url}  # what the operator set wins
    children = [
        subprocess.Popen([sys.executable, "-m", "portal_api.cli", "serve"], env=env),
        subprocess.Popen([sys.executable, "-m", "portal_api.cli", "worker"], env=env),
    ]
    typer.echo(f"API on http://{settings.host}:{settings.port}  (docs: /docs); Ctrl-C stops everything")
    typer.echo(
        f"web console on http://{settings.host}:{settings.port}/console/ (sign in with a demo token"
        + (", or single sign-on)" if settings.oidc_issuer else ")")
    )
    _supervise(children)


def _cloud_configured() -> bool:
    return bool(get_settings().clouds_yaml or os.environ.get("OS_CLIENT_CONFIG_FILE") or os.environ.get("OS_CLOUD"))


def _start_local_data_centre() -> None:
    from orchestrator.config import PROJECT_ROOT

    if not (PROJECT_ROOT / "devcloud" / "__main__.py").exists():
        log.warning("no cloud configured and no local data centre in this installation: orders will fail")
        return
    typer.echo("no cloud configured: starting the local data centre (the first time takes a few minutes)")
    env = {**os.environ, "TONLE_DATA_DIR": str(get_settings().resolved_data_dir)}
    result = subprocess.run([sys.executable, "-m", "devcloud", "up"], cwd=PROJECT_ROOT, env=env, check=False)
    if result.returncode != 0:
        typer.echo(f"the local data centre did not come up (exit {result.returncode}); see its output above", err=True)
        raise typer.Exit(1)
    typer.echo("local data centre up; it keeps running after Ctrl-C (stop it with `make devcloud-down`)")


def _local_data_centre_settings() -> dict[str, str]:
    """The `TONLE_*` settings the local data centre asks for besides clouds.yaml (its DNS and DCIM)."""
    from orchestrator.config import PROJECT_ROOT

    if not (PROJECT_ROOT / "devcloud" / "__main__.py").exists():
        return {}
    env = {**os.environ, "TONLE_DATA_DIR": str(get_settings().resolved_data_dir)}  # as `devcloud up` had it
    result = subprocess.run(
        [sys.executable, "-m", "devcloud", "env"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log.warning("`python -m devcloud env` failed: %s", result.stderr.strip()[-500:])
        return {}
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for child in children:
            if child.poll() is not None:
                log.error("process %s exited with %s; stopping the rest", child.args, child.returncode)
                stopping = True
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("process %s ignored SIGTERM; killing it", child.args)
            child.kill()
    log.info("stopped")


def _share_database_with_children() -> None:
    # uvicorn's worker processes must join the same embedded server, not each start one.
    if not get_settings().database_url:
        from orchestrator.database.core import database_url

        os.environ["TONLE_DATABASE_URL"] = database_url()
