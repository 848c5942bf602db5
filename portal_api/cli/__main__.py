from portal_api.cli import app

app(prog_name="tonle")
