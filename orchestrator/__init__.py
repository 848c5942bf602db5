"""Tonle's core: domain model, state machines, workflows, adapters and the job queue.

Nothing here speaks HTTP to clients; `portal_api` depends on this package, never the reverse.
"""
