"""PostgreSQL: the embedded server, the SQLAlchemy engine, sessions and migrations."""
