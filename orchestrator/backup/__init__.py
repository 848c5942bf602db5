"""Backups of services into the DR site's object storage."""
