"""SQLite: the embedded default. WAL, so reports read while the writer writes; a busy
timeout, so several origin workers writing to one file wait their turn instead of failing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from analytics.db.base import Database


class SqliteDatabase(Database):
    dialect = "sqlite"
    placeholder = "?"

    def _connect(self) -> Any:
        if self.target != ":memory:":
            Path(self.target).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(Path(self.target).expanduser()) if self.target != ":memory:"
                               else self.target, timeout=self.connect_timeout,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.connect_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _down_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.OperationalError,)

    def _duplicate_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.IntegrityError,)
