"""Assembles the `tonle` command from its groups."""

import typer

from portal_api.cli import admin, client, devcloud, dr, images, server, services

app = typer.Typer(
    help="Tonle: the provisioning orchestrator of the government data centre.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
client.register(app)
app.add_typer(admin.app, name="admin", help="Ministries, users and tokens.")
app.add_typer(server.db_app, name="db", help="Database migrations.")
app.add_typer(services.app, name="service", help="Day-2 actions on deployed services.")
# Also at the top level: the verb DR automation and auditors reach for first.
app.command("drill")(services.drill)
app.add_typer(dr.app, name="dr", help="Disaster recovery: verify the signed report chain.")
app.add_typer(images.app, name="images", help="Baked images: build and list them.")
app.add_typer(devcloud.app, name="devcloud", help="The local data centre for development and tests.")
