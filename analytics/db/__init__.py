"""Where analytics rows live: SQLite (a path; the embedded default) or PostgreSQL (a
`postgresql://` URL), behind one Database class and one schema."""

from __future__ import annotations

from analytics.db.base import Database, DatabaseDown


def open_database(url_or_path: str, *, connect_timeout: float = 3.0) -> Database:
    """The database named by the `[analytics] database` setting. Nothing is connected yet:
    the first use connects (and creates the schema), so opening never waits or fails on a
    server that is down; its use raises DatabaseDown then."""
    if url_or_path.startswith(("postgresql://", "postgres://")):
        from analytics.db.postgres import PostgresDatabase

        return PostgresDatabase(url_or_path, connect_timeout=connect_timeout)
    from analytics.db.sqlite import SqliteDatabase

    return SqliteDatabase(url_or_path, connect_timeout=connect_timeout)


__all__ = ["Database", "DatabaseDown", "open_database"]
