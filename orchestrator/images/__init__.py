"""Baked images: per offering role, the base image with that role's install phase done, built
at each site by the orchestrator and picked by orders there (see `selection.py`)."""
