"""The `tonle` command: server processes, administration, and the user verbs."""

from portal_api.cli.app import app

__all__ = ["app"]
