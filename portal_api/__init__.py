"""Tonle's portal: the REST API (FastAPI) and the `tonle` command line."""
