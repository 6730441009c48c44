"""PostgreSQL through psycopg 3. Several origin workers may create the schema at once:
an advisory lock makes that one at a time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg

from analytics.db import schema
from analytics.db.base import Database

_SCHEMA_LOCK = 0x5F0A_1713  # pg_advisory_xact_lock key of "sori analytics schema"
_ROLLUP_LOCK = 0x5F0A_1714  # (this, day ordinal): one roll-up of a day at a time


class PostgresDatabase(Database):
    dialect = "postgresql"
    placeholder = "%s"

    def _connect(self) -> Any:
        return psycopg.connect(self.target, connect_timeout=max(1, int(self.connect_timeout)),
                               application_name="sori-analytics")

    def _create_schema(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in schema.TABLES:
                cur.execute(statement)
        conn.commit()

    def _insert_rows(self, cur: Any, table: str, columns: Sequence[str],
                     rows: Sequence[Sequence[Any]]) -> None:
        # COPY: a batch in one stream, several times the rate of row-by-row INSERTs
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _stream_cursor(self, conn: Any) -> Any:
        # a server-side cursor: an open day's rows come over in chunks, not all at once
        return conn.cursor(name="sori_analytics_stream")

    def _lock_day(self, cur: Any, day: str) -> None:
        # without it, two connections replacing one day's rows deadlock on the keys
        ordinal = dt.date.fromisoformat(day).toordinal()
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_ROLLUP_LOCK, ordinal))

    def _down_errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.OperationalError, psycopg.InterfaceError)

    def _duplicate_errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.errors.UniqueViolation,)
