"""Demo data for `make run`: two ministries, their staff, an operator, automation and an admin.

Seeds only an empty database. The tokens are written once to `<data dir>/demo-tokens.json`.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from orchestrator.actors import SYSTEM, Role
from orchestrator.auth import service as auth
from orchestrator.auth.models import ApiTokenCreate, UserCreate
from orchestrator.database.unit_of_work import unit_of_work
from orchestrator.ministry import service as ministries
from orchestrator.ministry.models import Ministry, MinistryCreate, MinistryUpdate, QuotaLimits

log = logging.getLogger(__name__)

DEMO_QUOTA = QuotaLimits(
    vcpu=32, ram_gb=64, storage_gb=2000, object_gb=5000, public_ips=8, mailboxes=500, rack_units=42
)
DEMO_MINISTRIES = (("health", "Ministry of Health"), ("education", "Ministry of Education"))


def demo_suffix(code: str) -> str:
    """The DNS suffix a demo ministry owns: its orders may name only this and names under it."""
    return f"{code}.gov.example"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    ministry: str | None
    role: Role
    full_name: str
    platform_wide: bool = False


def demo_accounts() -> list[DemoAccount]:
    accounts = []
    for code, name in DEMO_MINISTRIES:
        accounts.append(DemoAccount(f"{code}-requester", code, Role.requester, f"IT officer, {name}"))
        accounts.append(DemoAccount(f"{code}-approver", code, Role.ministry_approver, f"Head of IT, {name}"))
    accounts.append(DemoAccount("operator", None, Role.operator, "Data-centre operator"))
    accounts.append(
        DemoAccount("automation", None, Role.automation, "Scheduled backups and drills", platform_wide=True)
    )
    accounts.append(DemoAccount("admin", None, Role.admin, "Platform administrator"))
    return accounts


def is_empty(session: Session) -> bool:
    return session.exec(select(Ministry.id)).first() is None


def seed_demo(tokens_file: Path) -> bool:
    """Create the demo data if the database is empty, in one transaction; return whether it did.

    The tokens file is written only once the accounts it names are committed.
    """
    with unit_of_work() as uow:
        if not is_empty(uow.session):
            log.info("database already has data; not seeding")
            _give_demo_suffixes(uow.session)
            uow.commit()
            return False
        written = _create_demo_data(uow.session)
        uow.commit()
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(json.dumps(written, indent=2) + "\n")
    tokens_file.chmod(0o600)
    log.info("seeded %d ministries and %d accounts; tokens in %s", len(DEMO_MINISTRIES), len(written), tokens_file)
    return True


def _create_demo_data(session: Session) -> list[dict[str, str | None]]:
    """The demo ministries and accounts; each account with a new token, as the tokens file lists them."""
    ids = {}
    for code, name in DEMO_MINISTRIES:
        ministry = ministries.create(
            session=session,
            actor=SYSTEM,
            data=MinistryCreate(code=code, name=name, quota_limits=DEMO_QUOTA, dns_suffixes=[demo_suffix(code)]),
        )
        ids[code] = ministry.id
    written: list[dict[str, str | None]] = []
    for account in demo_accounts():
        user = auth.create_user(
            session=session,
            actor=SYSTEM,
            data=UserCreate(
                username=account.username,
                full_name=account.full_name,
                role=account.role,
                ministry_id=ids[account.ministry] if account.ministry else None,
                platform_wide=account.platform_wide,
            ),
        )
        issued = auth.issue_token(session=session, actor=SYSTEM, user_id=user.id, data=ApiTokenCreate(name="demo"))
        written.append(
            {
                "username": account.username,
                "ministry": account.ministry,
                "role": account.role.value,
                "token": issued.token,
            }
        )
    return written


def _give_demo_suffixes(session: Session) -> None:
    """Demo ministries seeded before ministries owned DNS suffixes get theirs, so `make run` on an
    existing demo database can still order; a ministry that owns any suffix is left alone."""
    for code, _ in DEMO_MINISTRIES:
        ministry = ministries.get_by_code(session=session, code=code)
        if ministry is not None and not ministry.dns_suffixes:
            ministries.update(
                session=session,
                actor=SYSTEM,
                ministry_id=ministry.id,
                data=MinistryUpdate(dns_suffixes=[demo_suffix(code)]),
            )
            log.info("demo ministry %s now owns %s", code, demo_suffix(code))
