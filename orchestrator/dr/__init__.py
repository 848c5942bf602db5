"""Disaster recovery: signed, hash-chained reports of drills, failovers and failbacks (and, later, campaigns)."""
