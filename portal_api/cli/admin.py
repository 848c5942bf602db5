"""Administration straight against the database: bootstrap ministries, users and tokens."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from orchestrator import logs
from orchestrator.actors import SYSTEM, Role
from orchestrator.auth import service as auth
from orchestrator.auth.models import ApiTokenCreate, UserCreate
from orchestrator.config import get_settings
from orchestrator.database import migrate
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.errors import DomainError
from orchestrator.ministry import service as ministries
from orchestrator.ministry.models import DnsSuffix, MinistryCreate, MinistryUpdate, QuotaLimits
from orchestrator.seed import seed_demo

app = typer.Typer(no_args_is_help=True)


class BootstrapUser(BaseModel):
    username: str
    role: Role
    ministry: str | None = None
    full_name: str = ""
    platform_wide: bool = False


class BootstrapMinistry(BaseModel):
    code: str
    name: str
    quota: QuotaLimits = QuotaLimits()
    dns_suffixes: list[DnsSuffix] = []


class BootstrapFile(BaseModel):
    ministries: list[BootstrapMinistry] = []
    users: list[BootstrapUser] = []


EXAMPLE = """\
ministries:
  - code: health
    name: Ministry of Health
    quota: {vcpu: 32, ram_gb: 64, storage_gb: 2000, public_ips: 8}
    dns_suffixes: [health.gov.example]
users:
  - {username: admin, role: admin}
  - {username: health-it, role: requester, ministry: health, full_name: Dara Sok}
  - {username: dr-schedules, role: automation, platform_wide: true}
"""


@app.command()
def bootstrap(
    file: Annotated[Path | None, typer.Option(help="YAML with ministries and users (see --example)")] = None,
    demo: Annotated[bool, typer.Option(help="Seed the demo ministries and accounts instead")] = False,
    example: Annotated[bool, typer.Option(help="Print an example file and exit")] = False,
) -> None:
    """Create ministries and users that do not exist yet; print new users' tokens once, as JSON.

    A ministry that exists already gets the DNS suffixes the file lists and it lacks; nothing
    else of it changes.
    """
    if example:
        typer.echo(EXAMPLE, nl=False)
        return
    settings = get_settings()
    logs.configure(settings.log_level)
    migrate.upgrade()
    if demo:
        tokens_file = settings.resolved_data_dir / "demo-tokens.json"
        seeded = seed_demo(tokens_file)
        typer.echo(f"demo data {'seeded' if seeded else 'already present'}; tokens in {tokens_file}")
        return
    if file is None:
        raise typer.BadParameter("give --file or --demo", param_hint="--file")
    plan = _read(file)
    issued: list[dict[str, Any]] = []
    # One transaction: a file with a mistake anywhere changes nothing.
    with unit_of_work() as uow:
        session = uow.session
        for m in plan.ministries:
            try:
                _create_or_add_suffixes(session, m)
            except DomainError as exc:
                # The detail names the suffix at fault; an index would count the stored list, not the file's.
                raise typer.BadParameter(f"{file}: ministry {m.code}: {exc.detail}", param_hint="--file") from exc
        for u in plan.users:
            if auth.get_user_by_username(session=session, username=u.username) is not None:
                typer.echo(f"user {u.username} exists; left as it is", err=True)
                continue
            ministry_id = None
            if u.ministry:
                ministry = ministries.get_by_code(session=session, code=u.ministry)
                if ministry is None:
                    raise typer.BadParameter(f"user {u.username}: no ministry '{u.ministry}'", param_hint="--file")
                ministry_id = ministry.id
            user = auth.create_user(
                session=session,
                actor=SYSTEM,
                data=UserCreate(
                    username=u.username,
                    role=u.role,
                    ministry_id=ministry_id,
                    full_name=u.full_name,
                    platform_wide=u.platform_wide,
                ),
            )
            token = auth.issue_token(
                session=session, actor=SYSTEM, user_id=user.id, data=ApiTokenCreate(name="bootstrap")
            )
            issued.append({"username": u.username, "ministry": u.ministry, "role": u.role.value, "token": token.token})
        uow.commit()
    typer.echo(json.dumps(issued, indent=2))


def _create_or_add_suffixes(session: Session, m: BootstrapMinistry) -> None:
    existing = ministries.get_by_code(session=session, code=m.code)
    if existing is None:
        ministries.create(
            session=session,
            actor=SYSTEM,
            data=MinistryCreate(code=m.code, name=m.name, quota_limits=m.quota, dns_suffixes=m.dns_suffixes),
        )
        typer.echo(f"ministry {m.code} created", err=True)
        return
    missing = [s for s in m.dns_suffixes if s not in existing.dns_suffixes]
    if missing:
        ministries.update(
            session=session,
            actor=SYSTEM,
            ministry_id=existing.id,
            data=MinistryUpdate(dns_suffixes=[*existing.dns_suffixes, *missing]),
        )
        typer.echo(f"ministry {m.code} now also owns {', '.join(missing)}", err=True)


def _read(file: Path) -> BootstrapFile:
    try:
        return BootstrapFile.model_validate(yaml.safe_load(file.read_text()) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{file}: {exc}", param_hint="--file") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise typer.BadParameter(f"{file}: {where}: {first['msg']}", param_hint="--file") from exc
