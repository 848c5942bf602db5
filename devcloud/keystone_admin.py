"""A small Keystone v3 admin client over urllib (the project venv has no OpenStack libraries).

Every call is idempotent: it looks a thing up by name and creates it only when missing, so
`up` can run again on a half-built cloud.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devcloud.context import Context, Endpoint

SERVICE_PROJECT = "service"
INTERFACES = ("public", "internal", "admin")


class KeystoneError(RuntimeError):
    pass


class Keystone:
    """Admin session scoped to the admin project."""

    def __init__(self, ctx: Context) -> None:
        self.base = ctx.admin.auth_url.rstrip("/")
        self._ids: dict[str, str] = {}
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": ctx.admin.username,
                            "domain": {"name": ctx.admin.user_domain_name},
                            "password": ctx.admin.password,
                        }
                    },
                },
                "scope": {
                    "project": {
                        "name": ctx.admin.project_name,
                        "domain": {"name": ctx.admin.project_domain_name},
                    }
                },
            }
        }
        req = urllib.request.Request(
            f"{self.base}/auth/tokens",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                self.token = resp.headers["X-Subject-Token"]
        except urllib.error.HTTPError as exc:
            raise KeystoneError(f"admin login to {self.base} failed: {exc}") from exc

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "X-Auth-Token": self.token},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise KeystoneError(f"{method} {path}: {exc.code} {detail}") from exc
        return json.loads(raw) if raw else None

    def find(self, collection: str, **query: str) -> dict[str, Any] | None:
        qs = "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in query.items())
        found = self.call("GET", f"/{collection}?{qs}")[collection]
        return found[0] if found else None

    def ensure(
        self,
        collection: str,
        singular: str,
        query: dict[str, str],
        attrs: dict[str, Any],
    ) -> str:
        """Id of the first `collection` item matching `query`, created from `attrs` if absent."""
        found = self.find(collection, **query)
        if found:
            return str(found["id"])
        return str(self.call("POST", f"/{collection}", {singular: attrs})[singular]["id"])

    def domain_id(self, name: str = "Default") -> str:
        return "default" if name == "Default" else self.ensure("domains", "domain", {"name": name}, {"name": name})

    def ensure_project(self, name: str, domain: str = "Default", description: str = "") -> str:
        dom = self.domain_id(domain)
        return self.ensure(
            "projects",
            "project",
            {"name": name, "domain_id": dom},
            {"name": name, "domain_id": dom, "description": description},
        )

    def ensure_role(self, name: str) -> str:
        return self.ensure("roles", "role", {"name": name}, {"name": name})

    def ensure_user(self, name: str, password: str, domain: str = "Default") -> str:
        dom = self.domain_id(domain)
        user_id = self.ensure(
            "users",
            "user",
            {"name": name, "domain_id": dom},
            {"name": name, "domain_id": dom, "password": password},
        )
        # Keep the password what the config files say, even if an older run set another; but only
        # when it differs: Keystone revokes a user's tokens on every password change, and the
        # running services (Swift's s3token among them) would keep using revoked ones.
        if not self._password_works(user_id, password):
            self.call("PATCH", f"/users/{user_id}", {"user": {"password": password}})
        return user_id

    def _password_works(self, user_id: str, password: str) -> bool:
        body = {
            "auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": password}}}}
        }
        req = urllib.request.Request(
            f"{self.base}/auth/tokens",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=30):
                return True
        except urllib.error.HTTPError:
            return False

    def grant(self, project_id: str, user_id: str, role: str) -> None:
        self.call(
            "PUT",
            f"/projects/{project_id}/users/{user_id}/roles/{self.ensure_role(role)}",
        )

    def ensure_region(self, name: str) -> None:
        if f"region:{name}" in self._ids:
            return
        try:
            self.call("GET", f"/regions/{name}")
        except KeystoneError:
            self.call("POST", "/regions", {"region": {"id": name}})
        self._ids[f"region:{name}"] = name

    def ensure_endpoints(self, service_id: str, endpoints: Sequence[Endpoint]) -> None:
        existing = self.call("GET", f"/endpoints?service_id={service_id}")["endpoints"]
        for ep in endpoints:
            self.ensure_region(ep.region)
            for interface in INTERFACES:
                same = [e for e in existing if e["interface"] == interface and e["region_id"] == ep.region]
                if same and same[0]["url"] == ep.url:
                    continue
                for stale in same:
                    self.call("DELETE", f"/endpoints/{stale['id']}")
                self.call(
                    "POST",
                    "/endpoints",
                    {
                        "endpoint": {
                            "service_id": service_id,
                            "interface": interface,
                            "url": ep.url,
                            "region_id": ep.region,
                        }
                    },
                )


_SESSIONS: dict[str, Keystone] = {}


def session(ctx: Context) -> Keystone:
    """One admin login per command: each login costs Keystone a password hash check."""
    if ctx.admin.auth_url not in _SESSIONS:
        _SESSIONS[ctx.admin.auth_url] = Keystone(ctx)
    return _SESSIONS[ctx.admin.auth_url]


def register_service(
    ctx: Context,
    *,
    user: str,
    password: str,
    service_type: str,
    service_name: str,
    endpoints: Sequence[Endpoint],
    description: str = "",
) -> None:
    ks = Keystone(ctx)
    project_id = ks.ensure_project(SERVICE_PROJECT, description="OpenStack service users")
    user_id = ks.ensure_user(user, password)
    # `service` lets keystonemiddleware accept this user's service tokens; `admin` lets it act
    # on other projects' resources (nova binding neutron ports, cinder attaching to nova).
    for role in ("service", "admin"):
        ks.grant(project_id, user_id, role)
    service_id = ks.ensure(
        "services",
        "service",
        {"type": service_type, "name": service_name},
        {"type": service_type, "name": service_name, "description": description},
    )
    ks.ensure_endpoints(service_id, endpoints)
