"""The data centre's DCIM: Nautobot (own venv) with its own PostgreSQL and Redis, seeded with
the demo data centre.

`python -m devcloud up|down|status` call `start_background(ctx)` (first, not waited for),
`down(ctx)` and `status(ctx)`; `python -m devcloud.dcim up|down|status|wait` run one part alone.
See devcloud/dcim/README.md.
"""

from devcloud.dcim.lifecycle import down, start_background, status, up, wait

__all__ = ["down", "start_background", "status", "up", "wait"]
