"""The job queue (procrastinate on PostgreSQL) and the worker process that runs operations."""
