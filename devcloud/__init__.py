"""The local data centre: real OpenStack services and real instances for development and tests.

Never imported by the orchestrator, which speaks only HTTP/SSH to it, as to a real cloud.
Run it with `python -m devcloud up|down|status`.
"""
