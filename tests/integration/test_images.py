"""Baked images against a real PostgreSQL and the real API: who may list and build them, builds
asked for once per role and site, which image an order boots (and the event saying why), stale
images never picked, retirement beyond two. The builds themselves need a cloud (tests/cloud)."""

import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from orchestrator.actors import SYSTEM
from orchestrator.catalog import service as catalog
from orchestrator.config import get_settings
from orchestrator.database.columns import utcnow
from orchestrator.database.core import session_scope
from orchestrator.images import selection
from orchestrator.images import service as images
from orchestrator.images.digest import install_digest
from orchestrator.images.models import BakedImage, ImageStatus
from tests.conftest import Database, Platform, Tenant, order_and_approve

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


@pytest.fixture
def clean_images(database: Database) -> Iterator[None]:
    """Each test starts and ends with no image rows (they are data-centre wide, not per tenant)."""
    _delete_all()
    yield
    _delete_all()


def _delete_all() -> None:
    with session_scope() as session:
        for image in session.exec(select(BakedImage)).all():
            session.delete(image)
        session.commit()


def _recorded(
    role: str, site: str, *, digest: str, age_minutes: int, status: ImageStatus = ImageStatus.available
) -> str:
    """An image row as a finished build leaves it; its name."""
    built = utcnow() - timedelta(minutes=age_minutes)
    with session_scope() as session:
        image = BakedImage(
            role=role,
            site=site,
            name=f"tonle-{role}-{uuid.uuid4().hex[:14]}",
            glance_image_id=str(uuid.uuid4()),
            status=status,
            install_digest=digest,
            base_image="debian-12",
            packages={"image_role": role, "roles": [role], "packages": {"nginx": "1.22.1-9"}},
            requested_by="test",
            built_at=built,
        )
        session.add(image)
        session.commit()
        return image.name


def _digest(role: str) -> str:
    return install_digest(playbooks_dir=get_settings().playbooks_dir, role=role)


# --- the API: who may do what ------------------------------------------------------------------


def test_listing_needs_a_token_and_a_data_centre_role(
    client: httpx.Client, tenant: Tenant, platform: Platform, clean_images: None
) -> None:
    assert client.get("/v1/images").status_code == 401
    refused = client.get("/v1/images", headers=tenant.requester.headers)
    assert refused.status_code == 403, refused.text
    assert "read baked images" in refused.json()["detail"]
    name = _recorded("web", "primary", digest=_digest("web"), age_minutes=5)
    stale = _recorded("web", "primary", digest="0" * 64, age_minutes=50)
    listed = client.get("/v1/images", headers=platform.operator.headers)
    assert listed.status_code == 200, listed.text
    assert {i["name"]: i["current"] for i in listed.json()} == {name: True, stale: False}
    assert listed.json()[0]["packages"]["packages"] == {"nginx": "1.22.1-9"}
    only_cms = client.get("/v1/images", params={"role": "cms"}, headers=platform.operator.headers)
    assert only_cms.json() == []


def test_only_admins_build_and_unknown_roles_or_sites_are_named(
    client: httpx.Client, tenant: Tenant, platform: Platform, clean_images: None
) -> None:
    assert client.post("/v1/images/builds", json={}).status_code == 401
    for account in (tenant.requester, platform.operator, platform.automation):
        refused = client.post("/v1/images/builds", json={"roles": ["web"]}, headers=account.headers)
        assert refused.status_code == 403, (account.role, refused.text)
    unknown_role = client.post("/v1/images/builds", json={"roles": ["web", "ftp"]}, headers=platform.admin.headers)
    assert unknown_role.status_code == 422 and unknown_role.json()["field"] == "roles.1", unknown_role.text
    unknown_site = client.post(
        "/v1/images/builds", json={"roles": ["web"], "sites": ["mars"]}, headers=platform.admin.headers
    )
    assert unknown_site.status_code == 422 and unknown_site.json()["field"] == "sites.0", unknown_site.text
    hostile = client.post("/v1/images/builds", json={"roles": ["../../etc"]}, headers=platform.admin.headers)
    assert hostile.status_code == 422, hostile.text
    assert client.get("/v1/images", headers=platform.admin.headers).json() == []


def test_a_build_is_asked_for_once_per_role_and_site(
    client: httpx.Client, platform: Platform, clean_images: None
) -> None:
    first = client.post("/v1/images/builds", json={"roles": ["web", "mail"]}, headers=platform.admin.headers)
    assert first.status_code == 202, first.text
    builds = first.json()["builds"]
    assert [(b["role"], b["site"], b["status"]) for b in builds] == [
        ("web", "primary", "building"),
        ("mail", "primary", "building"),
    ]
    assert all(re.fullmatch(rf"tonle-{b['role']}-20\d{{12}}", b["name"]) for b in builds), builds
    assert all(isinstance(job, int) for job in first.json()["job_ids"])
    again = client.post("/v1/images/builds", json={"roles": ["web"]}, headers=platform.admin.headers)
    assert again.status_code == 202
    assert [b["id"] for b in again.json()["builds"]] == [builds[0]["id"]]
    assert again.json()["job_ids"] == [None]  # its job is still waiting: not deferred twice
    shown = client.get(f"/v1/images/{builds[0]['id']}", headers=platform.operator.headers).json()
    assert shown["status"] == "building" and shown["progress"] == "waiting for a worker"


def test_a_build_without_a_cloud_fails_saying_so(
    client: httpx.Client, platform: Platform, clean_images: None, work: Callable[[], None]
) -> None:
    """The integration tier's worker runs the no-op engine: the build ends `failed` with the reason."""
    accepted = client.post("/v1/images/builds", json={"roles": ["cms"]}, headers=platform.admin.headers).json()
    work()
    image = client.get(f"/v1/images/{accepted['builds'][0]['id']}", headers=platform.operator.headers).json()
    assert image["status"] == "failed", image
    assert "image builds need a cloud" in image["error"]
    with session_scope() as session:
        from orchestrator.audit.models import AuditEntry

        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.entity == "image", AuditEntry.entity_id == image["id"])
        ).all()
    assert sorted(actions) == ["build_failed", "build_requested"]


# --- which image an order boots ----------------------------------------------------------------


SHARED_REGION = """
clouds:
  one-primary:
    auth: {auth_url: "http://keystone.one:5000/v3", username: u, password: p, project_name: x}
    region_name: RegionOne
  one-dr:
    auth: {auth_url: "http://keystone.one:5000/v3", username: u, password: p, project_name: x}
    region_name: RegionOne
"""


def test_orders_boot_the_newest_current_image_of_their_role_at_their_site(
    database: Database, clean_images: None, tmp_path: Path
) -> None:
    # Sites with image services of their own (no clouds.yaml says otherwise).
    settings = get_settings().model_copy(update={"clouds_yaml": tmp_path / "absent.yaml"})
    web = catalog.get_offering("web-hosting")
    with session_scope() as session:
        none_yet = selection.choose(session=session, settings=settings, offering=web, site="primary")
    assert none_yet.name == settings.server_image and "no web image has been built at primary" in none_yet.reason

    stale = _recorded("web", "primary", digest="f" * 64, age_minutes=1)
    older = _recorded("web", "primary", digest=_digest("web"), age_minutes=30)
    newer = _recorded("web", "primary", digest=_digest("web"), age_minutes=10)
    _recorded("web", "dr", digest=_digest("web"), age_minutes=1)
    _recorded("cms", "primary", digest=_digest("cms"), age_minutes=1)
    _recorded("web", "primary", digest=_digest("web"), age_minutes=0, status=ImageStatus.failed)
    with session_scope() as session:
        chosen = selection.choose(session=session, settings=settings, offering=web, site="primary")
        colocation = selection.choose(
            session=session, settings=settings, offering=catalog.get_offering("colocation"), site="primary"
        )
    assert chosen.name == newer and chosen.name not in (stale, older)
    assert "the newest web image at primary built from the current install phase" in chosen.reason
    assert colocation.name == settings.server_image and "has no baked image role" in colocation.reason

    # Sites of one region share its image service: the newest image at either serves both.
    (tmp_path / "clouds.yaml").write_text(SHARED_REGION)
    shared = settings.model_copy(
        update={"clouds_yaml": tmp_path / "clouds.yaml", "site_clouds": {"primary": "one-primary", "dr": "one-dr"}}
    )
    with session_scope() as session:
        at_primary = selection.choose(session=session, settings=shared, offering=web, site="primary")
    assert at_primary.name not in (stale, older, newer), "the DR site's newer image serves the primary site"
    assert "(same image service as primary)" in at_primary.reason


def test_images_of_an_older_install_phase_are_never_picked(
    tmp_path: Path, database: Database, clean_images: None
) -> None:
    """The digest follows the install phase only: a configure-phase change keeps the image current."""
    playbooks = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, playbooks)
    settings = get_settings().model_copy(update={"playbooks_dir": playbooks})
    web = catalog.get_offering("web-hosting")
    built = _recorded("web", "primary", digest=_digest("web"), age_minutes=5)
    with session_scope() as session:
        assert selection.choose(session=session, settings=settings, offering=web, site="primary").name == built

    (playbooks / "roles" / "web" / "tasks" / "main.yml").write_text("# configure phase changed\n")
    assert install_digest(playbooks_dir=playbooks, role="web") == _digest("web")

    install = playbooks / "roles" / "web" / "tasks" / "install.yml"
    install.write_text(install.read_text() + "\n# one more package\n")
    assert install_digest(playbooks_dir=playbooks, role="web") != _digest("web")
    with session_scope() as session:
        stale = selection.choose(session=session, settings=settings, offering=web, site="primary")
    assert stale.name == settings.server_image
    assert f"newest {built}) were built from an older install phase" in stale.reason
    # Another role's install phase is not in web's digest.
    changed_web = install_digest(playbooks_dir=playbooks, role="web")
    (playbooks / "roles" / "mail" / "tasks" / "install.yml").write_text("# mail changed\n")
    assert install_digest(playbooks_dir=playbooks, role="web") == changed_web


def test_an_order_says_which_image_its_servers_boot_and_why(
    client: httpx.Client, tenant: Tenant, platform: Platform, clean_images: None, work: Callable[[], None]
) -> None:
    name = _recorded("web", "primary", digest=_digest("web"), age_minutes=2)
    approved = order_and_approve(client, tenant, platform)
    work()
    events = client.get(f"/v1/operations/{approved['operation_id']}/events", headers=tenant.requester.headers).json()
    selected = [e for e in events if e["type"] == "image.selected"]
    assert selected, [e["type"] for e in events]
    assert selected[0]["message"].startswith(f"new servers boot from {name}: the newest web image at primary")
    assert selected[0]["data"] == {"image": name, "site": "primary"}


# --- retirement ---------------------------------------------------------------------------------


def test_images_beyond_the_newest_two_of_a_role_and_site_are_retired(database: Database, clean_images: None) -> None:
    names = [_recorded("mail", "primary", digest=_digest("mail"), age_minutes=age) for age in (40, 30, 20, 10)]
    _recorded("mail", "dr", digest=_digest("mail"), age_minutes=50)
    with session_scope() as session:
        old = images.beyond_kept(session=session, role="mail", site="primary")
        assert sorted(image.name for image in old) == sorted(names[:2])
        for image in old:
            images.mark_retired(session=session, actor=SYSTEM, image_id=image.id)
        session.commit()
    with session_scope() as session:
        assert images.beyond_kept(session=session, role="mail", site="primary") == []
        statuses = {i.name: i.status for i in session.exec(select(BakedImage).where(BakedImage.role == "mail")).all()}
    assert [statuses[n] for n in names] == ["retired", "retired", "available", "available"]


def test_the_cli_lists_and_asks_for_builds(api_url: str, platform: Platform, clean_images: None) -> None:
    from typer.testing import CliRunner

    from portal_api.cli import app as cli

    name = _recorded("mail", "primary", digest=_digest("mail"), age_minutes=3)
    operator = {"TONLE_API_URL": api_url, "TONLE_TOKEN": platform.operator.token, "COLUMNS": "250"}
    listed = CliRunner().invoke(cli, ["images", "list", "--role", "mail"], env=operator)
    assert listed.exit_code == 0, listed.output
    assert name in listed.output and "nginx 1.22.1-9" in listed.output
    refused = CliRunner().invoke(cli, ["images", "build", "--role", "mail"], env=operator)
    assert refused.exit_code == 1 and "(403)" in refused.output, refused.output
    admin = {**operator, "TONLE_TOKEN": platform.admin.token}
    asked = CliRunner().invoke(cli, ["images", "build", "--role", "mail"], env=admin)
    assert asked.exit_code == 0, asked.output
    assert re.search(r"tonle-mail-\d{14} \(mail at primary\): building", asked.output), asked.output
