"""The FastAPI application."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orchestrator.auth import token_cache
from orchestrator.auth.revocation_listener import RevocationListener
from orchestrator.bootstrap import bootstrap
from orchestrator.catalog import service as catalog
from orchestrator.database.core import database_url
from portal_api import console, problems
from portal_api.input_guard import InputGuard
from portal_api.routers import (
    audit,
    backups,
    colocation,
    dcim,
    dr,
    dr_campaigns,
    health,
    images,
    mail_status,
    mailboxes,
    ministries,
    operations,
    requests,
    services,
    showback,
    users,
)
from portal_api.routers import catalog as catalog_routes

log = logging.getLogger(__name__)

DESCRIPTION = """
Tonle turns ministries' orders for shared services into running infrastructure.

Authenticate with an API token: `Authorization: Bearer tnl_...`. Errors are
`application/problem+json` documents; `field` names the input at fault.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    offerings = catalog.catalog()  # a bad catalogue file stops start-up here, naming file and field
    log.info("catalogue loaded: %s", ", ".join(sorted(offerings)))
    job_queue = bootstrap()
    job_queue.open()  # the API defers jobs through its synchronous pool
    revocations = RevocationListener(database_url=database_url(), cache=token_cache.cache)
    await revocations.start()  # until it listens, tokens are looked up in the database
    # What start-up made (modules, the app, the catalogue) lives as long as the process. Frozen,
    # the cycle collector's full passes leave it alone: walking it all stalled every request in
    # the process, 50-200 ms at a time under bench/api.py's order load.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await revocations.stop()
        job_queue.close()


def create_app() -> FastAPI:
    app = FastAPI(
        title="Tonle",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(InputGuard)
    for module in (
        health,
        catalog_routes,
        requests,
        colocation,  # before services: its /actions/mark-* win over /actions/{action}
        services,
        mailboxes,
        mail_status,
        backups,
        operations,
        ministries,
        users,
        audit,
        dr,
        dr_campaigns,
        dcim,
        images,
        showback,
    ):
        app.include_router(module.router)
    # After the API's routes: a request is matched against the routes in order, and the API's
    # requests are the many.
    console.install(app)
    return app


app = create_app()
