"""`tonle dr ...`: disaster-recovery verbs; `verify` checks the signed report chain.

By default over the API with the caller's token, as an auditor would: every link of the chain is
checked (hashes, order, signatures), and the content of each report the token may read. With
`--database`, on the orchestrator's host, straight from the database.
"""

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator.dr import chain, signing
from portal_api.cli.client import _check, _client, console

app = typer.Typer(no_args_is_help=True)

PAGE = 500


def _api_links(client: httpx.Client) -> Iterator[chain.Link]:
    after = 0
    while page := _check(client.get("/v1/dr/reports", params={"after": after, "limit": PAGE})):
        for item in page:
            yield _link(item)
        after = page[-1]["seq"]


def _link(item: dict[str, Any]) -> chain.Link:
    def text(field: str) -> str:
        return "" if item.get(field) is None else str(item[field])

    return chain.Link(
        seq=int(item["seq"]),
        id=str(item["id"]),
        operation_id=text("operation_id"),
        service_id=text("service_id"),
        ministry_id=text("ministry_id"),
        kind=text("kind"),
        recorded_at=datetime.fromisoformat(item["recorded_at"]),
        key_id=str(item["key_id"]),
        prev_hash=str(item["prev_hash"]),
        body_sha256=str(item["body_sha256"]),
        hash=str(item["hash"]),
        signature=str(item["signature"]),
        body=item.get("body"),
    )


def _pinned_key(path: Path | None) -> Ed25519PublicKey | None:
    if path is None:
        return None
    try:
        return signing.load_public_key(path.read_text())
    except signing.SigningKeyError as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--public-key") from exc


def _verify_over_api(pinned: Ed25519PublicKey | None, seen_hash: str | None) -> tuple[chain.Outcome, str]:
    with _client() as client:
        if pinned is None:
            published = _check(client.get("/v1/dr/signing-key"))
            key = signing.load_public_key(published["public_key_pem"])
            source = f"the key the API publishes ({signing.key_id(key)[:16]}…; pin it with --public-key)"
        else:
            key, source = pinned, f"the pinned key ({signing.key_id(pinned)[:16]}…)"
        return chain.verify(_api_links(client), key=key, seen_hash=seen_hash), source


def _verify_in_database(pinned: Ed25519PublicKey | None, seen_hash: str | None) -> tuple[chain.Outcome, str]:
    from orchestrator.database.unit_of_work import unit_of_work
    from orchestrator.dr import reports

    if pinned is None:
        if not signing.key_file().exists():
            raise typer.BadParameter(
                f"no signing key at {signing.key_file()}; give the public key with --public-key",
                param_hint="--public-key",
            )
        key, source = signing.public_key(), f"this host's signing key ({signing.key_id(signing.public_key())[:16]}…)"
    else:
        key, source = pinned, f"the pinned key ({signing.key_id(pinned)[:16]}…)"
    with unit_of_work() as uow:
        return reports.verify_all(session=uow.session, key=key, seen_hash=seen_hash), source


@app.command()
def verify(
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="The orchestrator's public key (PEM or raw base64) you obtained and trust; "
            "without it, the key the API (or, with --database, this host) has",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    database: Annotated[
        bool, typer.Option("--database", help="Read the reports from the database (on the orchestrator's host)")
    ] = False,
    seen: Annotated[
        str | None,
        typer.Option(
            help="The head hash an earlier run printed: fail if that report is gone (the chain's end was cut)",
        ),
    ] = None,
) -> None:
    """Check the whole DR report chain: order, hash links, every signature; exit 1 naming the first bad report."""
    pinned = _pinned_key(public_key)
    if seen is not None and not re.fullmatch(r"[0-9a-f]{64}", seen):
        raise typer.BadParameter("a report hash is 64 lowercase hex digits", param_hint="--seen")
    outcome, source = _verify_in_database(pinned, seen) if database else _verify_over_api(pinned, seen)
    if outcome.problem is not None:
        console.print(f"FAILED after {outcome.checked} good report(s): {outcome.problem}", style="red", markup=False)
        raise typer.Exit(1)
    withheld = outcome.checked - outcome.bodies_checked
    console.print(
        f"OK: {outcome.checked} report(s), chain intact, every signature valid with {source}"
        + (f"; {withheld} of another ministry checked by their link only" if withheld else "")
        + f". Head: {outcome.head_hash} (note it; pass it as --seen next time)",
        markup=False,
        highlight=False,
    )
