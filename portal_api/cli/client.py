"""The user verbs: talk to a Tonle API over HTTP, as ministry staff and operators do."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from orchestrator.config import ClientSettings

console = Console()


def register(app: typer.Typer) -> None:
    app.command("catalog")(catalog)
    app.command("order")(order)
    app.command("requests")(list_requests)
    app.command("approve")(approve)
    app.command("watch")(watch)


def _client() -> httpx.Client:
    settings = ClientSettings()
    if not settings.token:
        raise typer.BadParameter("set TONLE_TOKEN to your API token", param_hint="TONLE_TOKEN")
    return httpx.Client(base_url=settings.api_url, headers={"Authorization": f"Bearer {settings.token}"}, timeout=30.0)


def _check(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json()
    try:
        problem = response.json()
        message = f"{problem.get('title', 'Error')} ({response.status_code}): {problem.get('detail', '')}"
        if problem.get("field"):
            message += f"  [field: {problem['field']}]"
    except ValueError:
        message = f"HTTP {response.status_code}: {response.text[:500]}"
    console.print(message, style="red", markup=False, highlight=False)
    raise typer.Exit(1)


def catalog(offering: Annotated[str | None, typer.Argument(help="Show one offering in full")] = None) -> None:
    """List the catalogue, or show one offering with its plans and parameter schema."""
    with _client() as client:
        if offering:
            console.print_json(json.dumps(_check(client.get(f"/v1/catalog/{offering}"))))
            return
        table = Table("offering", "title", "plans", "approvals")
        for item in _check(client.get("/v1/catalog")):
            table.add_row(
                item["id"],
                item["title"],
                ", ".join(p["id"] for p in item["plans"]),
                " -> ".join(item["approval_stages"]),
            )
        console.print(table)


def order(
    offering: Annotated[str, typer.Argument(help="Offering id, e.g. web-hosting")],
    plan: Annotated[str, typer.Argument(help="Plan id, e.g. small")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value (value may be JSON)")] = None,
    params_file: Annotated[Path | None, typer.Option(help="JSON or YAML file with all parameters")] = None,
    justification: Annotated[str, typer.Option(help="Why the ministry needs it")] = "",
    ministry_id: Annotated[str | None, typer.Option(help="For operators and admins: which ministry")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Retry-safe key")] = None,
) -> None:
    """Order a service; prints the request."""
    parameters: dict[str, Any] = {}
    if params_file:
        import yaml

        parameters.update(yaml.safe_load(params_file.read_text()) or {})
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"'{item}' is not key=value", param_hint="--param")
        try:
            parameters[key] = json.loads(value)
        except ValueError:
            parameters[key] = value
    body: dict[str, Any] = {
        "offering_id": offering,
        "plan": plan,
        "parameters": parameters,
        "justification": justification,
    }
    if ministry_id:
        body["ministry_id"] = ministry_id
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with _client() as client:
        request = _check(client.post("/v1/requests", json=body, headers=headers))
    console.print(f"request [bold]{request['id']}[/bold] is {request['status']}")
    console.print(f"approvals needed: {' -> '.join(request['approval_stages'])}")


def list_requests(
    status: Annotated[str | None, typer.Option(help="Filter by status")] = None,
    awaiting: Annotated[str | None, typer.Option(help="Only those waiting for this role")] = None,
) -> None:
    """List the requests you can see."""
    params = {k: v for k, v in {"status": status, "awaiting_role": awaiting}.items() if v}
    with _client() as client:
        page = _check(client.get("/v1/requests", params=params))
    table = Table("id", "offering", "plan", "status", "created")
    for r in page["items"]:
        table.add_row(r["id"], r["offering_id"], r["plan"], r["status"], r["created_at"][:19])
    console.print(table)
    console.print(f"{len(page['items'])} of {page['total']}")


def approve(
    request_id: Annotated[str, typer.Argument()],
    reject: Annotated[bool, typer.Option(help="Vote to reject instead")] = False,
    comment: Annotated[str, typer.Option()] = "",
    reference: Annotated[str, typer.Option(help="Official reference, e.g. memo number")] = "",
) -> None:
    """Vote on a request's current approval stage."""
    body = {"decision": "reject" if reject else "approve", "comment": comment, "reference": reference}
    with _client() as client:
        request = _check(client.post(f"/v1/requests/{request_id}/approvals", json=body))
    console.print(f"request {request['id']} is {request['status']}")
    if request.get("operation_id"):
        console.print(
            f"operation {request['operation_id']} started; follow it with: tonle watch {request['operation_id']}"
        )


def watch(operation_id: Annotated[str, typer.Argument()]) -> None:
    """Follow an operation live until it finishes; exits non-zero if it failed."""
    with _client() as client:
        operation = _check(client.get(f"/v1/operations/{operation_id}"))
        steps = [s["name"] for s in operation["steps"]]
        console.print(f"{operation['kind']} of service {operation['service_id']}: {' -> '.join(steps)}")
        status = operation["status"]
        with (
            console.status("waiting for events...") as spinner,
            client.stream("GET", f"/v1/operations/{operation_id}/stream", timeout=None) as stream,
        ):
            for event_type, data in _sse(stream):
                if event_type == "end":
                    status = data["status"]
                    break
                style = {"error": "red", "warning": "yellow"}.get(data.get("level", "info"))
                step = f"[{data['step']}] " if data.get("step") else ""
                # Event text is data (Ansible task names contain brackets): never markup.
                console.print(
                    f"{data['at'][11:19]} {step}{data['message']}", style=style, markup=False, highlight=False
                )
                spinner.update(f"{event_type}...")
    console.print(f"operation {operation_id}: [bold]{status}[/bold]")
    if status != "succeeded":
        raise typer.Exit(1)


def _sse(stream: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    event_type, data_lines = "message", list[str]()
    for line in stream.iter_lines():
        if not line:
            if data_lines:
                yield event_type, json.loads("\n".join(data_lines))
            event_type, data_lines = "message", []
        elif line.startswith("event:"):
            event_type = line[6:].strip()
        elif line.startswith("data:"):
            data_lines.append(line[5:].strip())
