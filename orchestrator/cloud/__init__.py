"""The orchestrator's own dealings with the clouds: sites, ministries' projects, connections."""
