"""The embedded engine: runs Pulumi programs in-process, keeps checkpoints in PostgreSQL."""
