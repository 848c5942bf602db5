"""DNS for the local data centre: Designate 23 (own venv) with a private BIND9.

`python -m devcloud up|down|status` call `up(ctx)`, `down(ctx)` and `status(ctx)`; see
devcloud/dns/README.md for what runs where and how to debug it.
"""

from devcloud.dns.lifecycle import down, prepare, refresh, status, up

__all__ = ["down", "prepare", "refresh", "status", "up"]
