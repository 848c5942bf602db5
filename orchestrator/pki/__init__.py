"""The data centre's internal certificate authority, kept by the orchestrator."""
