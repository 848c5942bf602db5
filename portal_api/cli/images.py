"""`tonle images ...`: baked images over the API (admins build them, operators list them)."""

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from portal_api.cli.client import _check, _client, console

app = typer.Typer(no_args_is_help=True)

POLL_SECONDS = 5.0


@app.command("build")
def build(
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Image role (repeatable); default: every role")
    ] = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Site (repeatable); default: the primary site")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the builds until they end; non-zero exit if one failed")] = False,
) -> None:
    """Build baked images: per role and site, the install phase on a fresh server, snapshotted into Glance."""
    with _client() as client:
        accepted = _check(client.post("/v1/images/builds", json={"roles": role or None, "sites": site or None}))
        builds: list[dict[str, Any]] = accepted["builds"]
        for image in builds:
            console.print(f"{image['name']} ({image['role']} at {image['site']}): {image['status']}  id {image['id']}")
        if not wait:
            return
        pending = {image["id"]: image for image in builds}
        progress: dict[str, str | None] = {}
        failed = False
        while pending:
            time.sleep(POLL_SECONDS)
            for image_id in list(pending):
                image = _check(client.get(f"/v1/images/{image_id}"))
                if image["status"] == "building":
                    if image["progress"] != progress.get(image_id):
                        progress[image_id] = image["progress"]
                        console.print(f"{image['name']}: {image['progress']}", markup=False, highlight=False)
                    continue
                del pending[image_id]
                failed = failed or image["status"] != "available"
                console.print(_outcome(image), markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_images(
    role: Annotated[str | None, typer.Option(help="Only this role")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site")] = None,
    status: Annotated[str | None, typer.Option(help="building, available, failed or retired")] = None,
) -> None:
    """Baked images, newest first; `current` ones are what new orders boot."""
    params = {key: value for key, value in {"role": role, "site": site, "status": status}.items() if value}
    with _client() as client:
        found = _check(client.get("/v1/images", params=params))
    table = Table("name", "role", "site", "status", "current", "built", "size MB", "build s", "packages")
    for image in found:
        packages = (image.get("packages") or {}).get("packages") or {}
        table.add_row(
            image["name"],
            image["role"],
            image["site"],
            image["status"],
            "yes" if image["current"] else "no",
            (image["built_at"] or "")[:19],
            f"{image['size_bytes'] / 1e6:.0f}" if image["size_bytes"] else "",
            f"{image['build_seconds']:.0f}" if image["build_seconds"] else "",
            ", ".join(f"{name} {version}" for name, version in sorted(packages.items())[:6]),
        )
    console.print(table)


def _outcome(image: dict[str, Any]) -> str:
    if image["status"] == "available":
        size = f"{image['size_bytes'] / 1e6:.0f} MB" if image["size_bytes"] else "size unknown"
        return f"{image['name']}: available in {image['build_seconds']:.0f} s, {size}"
    return f"{image['name']}: {image['status']}: {image['error']}"
