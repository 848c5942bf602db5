"""The web console: server-rendered pages (Jinja2 + htmx) at /console/, on the API's own services
and permission policy, in Khmer and English."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from portal_api.console import errors
from portal_api.console.routes import approvals, auth, capacity, colocation, drills, home, oidc, operations
from portal_api.console.routes import catalog as staff_catalog
from portal_api.console.routes import live as staff_live
from portal_api.console.routes import quota as staff_quota
from portal_api.console.routes import requests as staff_requests
from portal_api.console.routes import services as staff_services
from portal_api.console.routes import showback as showback_routes
from portal_api.console.security import ConsoleSecurityHeaders
from portal_api.console.session import PATH

STATIC_DIR = Path(__file__).parent / "static"

# Each area's router; an area adds its own line.
ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    home.router,
    oidc.router,
    approvals.router,
    operations.router,
    colocation.router,
    drills.router,
    capacity.router,
    showback_routes.router,
    staff_catalog.router,
    staff_requests.router,
    staff_services.router,
    staff_quota.router,
    staff_live.router,
)


def install(app: FastAPI) -> None:
    """Mount the console on the API's app (after `problems.install`: its error pages wrap those handlers)."""
    errors.install(app)
    app.add_middleware(ConsoleSecurityHeaders)
    app.mount(f"{PATH}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    for router in ROUTERS:
        app.include_router(router)
