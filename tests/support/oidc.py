"""A real OpenID provider for the console's single sign-on tests (tests/support/oidc_provider).

The provider must know the console's callback URL and the console must know the provider's
issuer, so a provider is planned first (its port, issuer and client credentials fixed), the API is
started with `provider.api_settings()`, and then the provider is served with the API's callback:

    provider = OidcProvider.plan(workdir=tmp)
    with serving_api(db.url, log_dir, **provider.api_settings()) as api_url:
        with provider.serving(redirect_uris=[api_url + CALLBACK_PATH]):
            provider.set_account("alice", {...})

Accounts live in a JSON file the provider reads at every sign-in: `set_account` between two logins
changes what the second one sees.
"""

import fcntl
import json
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Database, free_port, serving_api, wait_until_ready

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
CALLBACK_PATH = "/console/auth/callback"
CLIENT_ID = "tonle-console"


def _installed_as_locked() -> bool:
    """Every package of the lock file is in node_modules at its locked version (whoever ran
    `npm ci`: this helper, `make browser`, a developer)."""
    lock = json.loads((PROVIDER_DIR / "package-lock.json").read_text())
    for path, entry in lock.get("packages", {}).items():
        if not path.startswith("node_modules/"):
            continue
        manifest = PROVIDER_DIR / path / "package.json"
        try:
            if json.loads(manifest.read_text()).get("version") != entry.get("version"):
                return False
        except (OSError, ValueError):
            return False
    return True


def ensure_installed() -> None:
    """`npm ci` the provider's packages when node_modules does not match the lock file (quick otherwise)."""
    if _installed_as_locked():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the OpenID provider of the SSO tests (apt install nodejs npm)")
    # Two pytest processes may start at once; one installs, the other waits and finds it done.
    with (Path(tempfile.gettempdir()) / "tonle-oidc-provider-npm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_as_locked():
            return
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PROVIDER_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )


@dataclass
class OidcProvider:
    port: int
    client_id: str
    client_secret: str
    workdir: Path

    @classmethod
    def plan(cls, *, workdir: Path) -> "OidcProvider":
        workdir.mkdir(parents=True, exist_ok=True)
        provider = cls(port=free_port(), client_id=CLIENT_ID, client_secret=secrets.token_urlsafe(24), workdir=workdir)
        provider.accounts_file.write_text("{}")
        return provider

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def accounts_file(self) -> Path:
        return self.workdir / "accounts.json"

    def api_settings(self) -> dict[str, str]:
        """The `TONLE_*` environment of an API whose console signs in through this provider."""
        return {
            "TONLE_OIDC_ISSUER": self.issuer,
            "TONLE_OIDC_CLIENT_ID": self.client_id,
            "TONLE_OIDC_CLIENT_SECRET": self.client_secret,
        }

    def set_account(self, account_id: str, claims: dict[str, Any]) -> None:
        """Add or change an account; its next sign-in sees these claims (`sub` is the account id)."""
        accounts = json.loads(self.accounts_file.read_text())
        accounts[account_id] = claims
        # Atomic replace: the provider may be reading the file for another sign-in.
        staged = self.accounts_file.with_suffix(".tmp")
        staged.write_text(json.dumps(accounts))
        staged.replace(self.accounts_file)

    @contextmanager
    def serving(self, *, redirect_uris: list[str]) -> Iterator["OidcProvider"]:
        ensure_installed()
        log_file = self.workdir / "provider.log"
        command = ["node", "provider.mjs", "--port", str(self.port), "--issuer", self.issuer]
        command += ["--client-id", self.client_id, "--accounts-file", str(self.accounts_file)]
        for uri in redirect_uris:
            command += ["--redirect-uri", uri]
        with log_file.open("wb") as log:
            # The secret goes through the environment: argv is visible to every local user.
            process = subprocess.Popen(
                command,
                cwd=PROVIDER_DIR,
                env={"PATH": _path(), "OIDC_CLIENT_SECRET": self.client_secret, "NODE_ENV": "test"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_ready(
                self.issuer,
                process,
                log_file,
                30,
                probe="/.well-known/openid-configuration",
                what="the OpenID provider",
            )
            yield self
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _path() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is needed for the OpenID provider of the SSO tests")
    return str(Path(node).parent)


@dataclass(frozen=True)
class SsoApi:
    """An API whose console signs in through a running test provider."""

    url: str
    provider: OidcProvider


@contextmanager
def serving_sso_api(database: Database, workdir: Path, **settings: str) -> Iterator[SsoApi]:
    """The OpenID provider and an API process configured for it (extra `TONLE_*` settings allowed)."""
    provider = OidcProvider.plan(workdir=workdir / "oidc")
    with (
        serving_api(database.url, workdir, **provider.api_settings(), **settings) as api_url,
        provider.serving(redirect_uris=[api_url + CALLBACK_PATH]),
    ):
        yield SsoApi(url=api_url, provider=provider)


@pytest.fixture(scope="session")
def sso_api(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoApi]:
    """Session-wide: the OpenID provider and an API signing in through it (browser tier, SSO tests).
    Import it into a conftest or test module: `from tests.support.oidc import sso_api`."""
    with serving_sso_api(database, tmp_path_factory.mktemp("sso")) as running:
        yield running
