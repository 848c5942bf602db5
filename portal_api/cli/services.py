"""`tonle service ...`: day-2 verbs on deployed services, over the API."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from portal_api.cli.client import _check, _client, console

app = typer.Typer(no_args_is_help=True)

ARCHIVE_TYPES = {
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".tar": "application/x-tar",
    ".zip": "application/zip",
}


def _started(operation: dict[str, object]) -> None:
    console.print(
        f"operation {operation['id']} ({operation['kind']}) queued; follow it with: tonle watch {operation['id']}"
    )


@app.command("list")
def list_services(status: Annotated[str | None, typer.Option(help="Filter by status")] = None) -> None:
    """The services you can see."""
    with _client() as client:
        page = _check(client.get("/v1/services", params={"status": status} if status else {}))
    table = Table("id", "name", "offering", "plan", "status")
    for s in page["items"]:
        table.add_row(s["id"], s["name"], s["offering_id"], s["plan"], s["status"])
    console.print(table)


@app.command()
def show(service_id: str) -> None:
    """One service with its endpoints."""
    with _client() as client:
        console.print_json(json.dumps(_check(client.get(f"/v1/services/{service_id}"))))


@app.command()
def resize(
    service_id: str,
    plan: str,
    justification: Annotated[str, typer.Option(help="Why; approvers read it when the plan grows")] = "",
) -> None:
    """Move a service to another plan of its offering. A plan that needs more quota waits for approval."""
    with _client() as client:
        accepted = _check(
            client.post(
                f"/v1/services/{service_id}/actions/resize", json={"plan": plan, "justification": justification}
            )
        )
    if accepted["outcome"] == "approval_needed":
        request = accepted["request"]
        stages = " then ".join(request["approval_stages"])
        console.print(
            f"plan '{plan}' needs more quota, so it is approved like an order: request {request['id']} waits for "
            f"{stages}; quota reserved: {request['quota_cost']}. The change starts after the last approval "
            f"(tonle requests, tonle approve {request['id']})."
        )
        return
    _started(accepted["operation"])


@app.command()
def deploy(service_id: str, archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Upload a site archive (.tar.gz or .zip) and deploy it."""
    media_type = ARCHIVE_TYPES.get(archive.suffix)
    if media_type is None:
        raise typer.BadParameter("give a .tar.gz, .tgz, .tar or .zip archive", param_hint="ARCHIVE")
    with _client() as client:
        response = client.post(
            f"/v1/services/{service_id}/actions/deploy-content",
            params={"filename": archive.name},
            content=archive.read_bytes(),
            headers={"Content-Type": media_type},
            timeout=300,
        )
        _started(_check(response))


@app.command()
def restart(service_id: str) -> None:
    """Restart the service's software."""
    with _client() as client:
        _started(_check(client.post(f"/v1/services/{service_id}/actions/restart")))


@app.command()
def drill(
    service_id: str,
    restore_point: Annotated[
        str | None, typer.Option(help="Id of the restore point to drill (default: the latest)")
    ] = None,
    expect_text: Annotated[
        str | None, typer.Option(help="A text the restored copy must serve, besides passing its health check")
    ] = None,
) -> None:
    """Restore the service into an isolated copy at the DR site, check it, measure RPO and RTO,
    destroy the copy; its report: GET /v1/operations/<id>/report."""
    body = {key: value for key, value in (("restore_point", restore_point), ("expect_text", expect_text)) if value}
    with _client() as client:
        _started(_check(client.post(f"/v1/services/{service_id}/actions/drill", json=body or None)))


@app.command()
def decommission(
    service_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False
) -> None:
    """Final backup, destroy everything, give the quota back."""
    if not yes:
        typer.confirm(f"Decommission service {service_id}? Its servers and data are destroyed", abort=True)
    with _client() as client:
        _started(_check(client.post(f"/v1/services/{service_id}/decommission")))


@app.command()
def credentials(service_id: str) -> None:
    """Show the service's generated credentials. They are shown once only."""
    with _client() as client:
        shown = _check(client.post(f"/v1/services/{service_id}/credentials"))
    for name, value in shown["credentials"].items():
        console.print(f"{name}: {value}", markup=False, highlight=False)
    console.print("Store them now: Tonle will not show them again.", style="yellow")


@app.command()
def retry(operation_id: str) -> None:
    """(Operators) Retry a failed operation from its failed step."""
    with _client() as client:
        _started(_check(client.post(f"/v1/operations/{operation_id}/retry")))
