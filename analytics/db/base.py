"""The operations analytics needs, in SQL both engines run (placeholders are written `?`
and turned into `%s` for psycopg). One connection per Database, used under a lock: the
writer thread has its own Database, reports another."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from analytics.counting import DayFigures, EventRow, Figures, HitRow, Qoe
from analytics.db import schema


class DatabaseDown(Exception):
    """The database cannot be reached or is busy: try again later."""


class Database:
    dialect = "?"
    placeholder = "?"

    def __init__(self, target: str, *, connect_timeout: float = 3.0) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: Any = None

    # --- engine hooks -------------------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    def _create_schema(self, conn: Any) -> None:
        cur = conn.cursor()
        for statement in schema.TABLES:
            cur.execute(statement)
        conn.commit()

    def _down_errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    def _duplicate_errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    # --- plumbing -----------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _stream_cursor(self, conn: Any) -> Any:
        """A cursor that fetches rows as they are read (SQLite's always does)."""
        return conn.cursor()

    @contextmanager
    def _tx(self, stream: bool = False) -> Iterator[Any]:
        """A cursor in one transaction: committed at the end, rolled back on error; errors
        of an unreachable or busy database become DatabaseDown (and the connection is
        dropped, to be made again on the next call)."""
        with self._lock:
            try:
                if self._conn is None:
                    conn = self._connect()
                    try:
                        self._create_schema(conn)
                    except BaseException:
                        conn.close()
                        raise
                    self._conn = conn
                cur = self._stream_cursor(self._conn) if stream else self._conn.cursor()
                try:
                    try:
                        yield cur
                    finally:
                        cur.close()
                    self._conn.commit()
                except BaseException:
                    self._rollback()
                    raise
            except self._down_errors() as exc:
                self._drop()
                raise DatabaseDown(str(exc) or type(exc).__name__) from exc

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except Exception:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def ping(self) -> None:
        with self._tx() as cur:
            cur.execute("SELECT 1")

    # --- raw rows -----------------------------------------------------------------------

    def insert(self, hits: Sequence[HitRow], events: Sequence[EventRow]) -> None:
        """One transaction: the rows, and any roll-up of their days forgotten (a late row
        of a closed day, e.g. from a log import, makes that day be rolled up again)."""
        days = sorted({r.day for r in hits} | {r.day for r in events})
        with self._tx() as cur:
            if hits:
                self._insert_rows(cur, "hits", schema.HIT_COLUMNS, hits)
            if events:
                self._insert_rows(cur, "events", schema.EVENT_COLUMNS, events)
            for day in days:
                cur.execute(self._sql("DELETE FROM rolled WHERE day = ?"), (day,))

    def _insert_rows(self, cur: Any, table: str, columns: Sequence[str],
                     rows: Sequence[Sequence[Any]]) -> None:
        marks = ", ".join("?" * len(columns))
        cur.executemany(self._sql(f"INSERT INTO {table} ({', '.join(columns)}) "
                                  f"VALUES ({marks})"), rows)

    def hits(self, day: str, asset: str | None = None) -> list[HitRow]:
        return list(self.iter_hits(day, asset))

    def iter_hits(self, day: str, asset: str | None = None,
                  chunk: int = 5000) -> Iterator[HitRow]:
        """The day's rows a chunk at a time (an open day can hold millions); the
        connection is this iterator's until it is exhausted or closed."""
        cols = ", ".join(schema.HIT_COLUMNS)
        with self._tx(stream=True) as cur:
            if asset is None:
                cur.execute(self._sql(f"SELECT {cols} FROM hits WHERE day = ?"), (day,))
            else:
                cur.execute(self._sql(f"SELECT {cols} FROM hits WHERE day = ? AND asset = ?"),
                            (day, asset))
            make = HitRow._make
            while rows := cur.fetchmany(chunk):
                yield from map(make, rows)

    def events(self, day: str, asset: str | None = None) -> list[EventRow]:
        cols = ", ".join(schema.EVENT_COLUMNS)
        with self._tx() as cur:
            if asset is None:
                cur.execute(self._sql(f"SELECT {cols} FROM events WHERE day = ?"), (day,))
            else:
                cur.execute(self._sql(f"SELECT {cols} FROM events WHERE day = ? AND asset = ?"),
                            (day, asset))
            return [EventRow(*r) for r in cur.fetchall()]

    def raw_days(self, before: str) -> list[str]:
        """Days before `before` with raw rows (a range scan: cheap for the old end of the
        tables, where retention leaves nothing but late imports)."""
        with self._tx() as cur:
            cur.execute(self._sql("SELECT DISTINCT day FROM hits WHERE day < ? UNION "
                                  "SELECT DISTINCT day FROM events WHERE day < ?"),
                        (before, before))
            return sorted(r[0] for r in cur.fetchall())

    def has_raw(self, day: str) -> bool:
        """Whether the day has raw rows: two index probes."""
        with self._tx() as cur:
            for table in ("hits", "events"):
                cur.execute(self._sql(f"SELECT 1 FROM {table} WHERE day = ? LIMIT 1"), (day,))
                if cur.fetchone() is not None:
                    return True
            return False

    def delete_raw_before(self, day: str) -> int:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM hits WHERE day < ?"), (day,))
            n = int(cur.rowcount or 0)
            cur.execute(self._sql("DELETE FROM events WHERE day < ?"), (day,))
            return n + int(cur.rowcount or 0)

    # --- salts --------------------------------------------------------------------------

    def salt(self, day: str, candidate: str) -> str:
        """The day's salt: `candidate` if this call is the first to ask, else the one
        another process stored first (insert-if-absent, then read)."""
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO salts (day, salt) VALUES (?, ?) "
                                  "ON CONFLICT (day) DO NOTHING"), (day, candidate))
            cur.execute(self._sql("SELECT salt FROM salts WHERE day = ?"), (day,))
            row = cur.fetchone()
            return str(row[0])

    def delete_salts_before(self, day: str) -> int:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM salts WHERE day < ?"), (day,))
            return int(cur.rowcount or 0)

    # --- roll-ups -----------------------------------------------------------------------

    def rolled_days(self) -> set[str]:
        with self._tx() as cur:
            cur.execute("SELECT day FROM rolled")
            return {r[0] for r in cur.fetchall()}

    def write_day(self, fig: DayFigures) -> None:
        """Replace the day's roll-up with `fig` and mark the day rolled (one transaction:
        doing it twice leaves the same rows). Another process rolling the same day up at
        the same moment makes this one's inserts collide: its figures are the same, so the
        collision is the end of it."""
        try:
            self._write_day(fig)
        except self._duplicate_errors():
            pass

    def _lock_day(self, cur: Any, day: str) -> None:
        """Serialise roll-ups of one day between connections (SQLite's write lock does)."""

    def _write_day(self, fig: DayFigures) -> None:
        d = fig.day
        with self._tx() as cur:
            self._lock_day(cur, d)
            for table in (*schema.ROLLUP_TABLES, "rolled"):
                cur.execute(self._sql(f"DELETE FROM {table} WHERE day = ?"), (d,))
            t = fig.total
            cur.execute(self._sql("INSERT INTO day_totals VALUES (?, ?, ?, ?)"),
                        (d, t.downloads, t.listeners, t.bytes))
            rows: list[tuple[Any, ...]] = []
            for asset, f in fig.assets.items():
                q = fig.qoe.get(asset) or Qoe()
                rows.append((d, asset, f.downloads, f.listeners, f.bytes, q.sessions,
                             q.rebuffers, q.exits_before_start, q.playing_s, q.waiting_s))
            self._many(cur, "day_assets", rows)
            self._many(cur, "day_countries", [(d, a, c, n) for (a, c), n in fig.countries.items()])
            self._many(cur, "day_apps", [(d, a, p, n) for (a, p), n in fig.apps.items()])
            self._many(cur, "day_renditions", [(d, a, r, v[0], int(v[1]))
                                               for (a, r), v in fig.renditions.items()])
            samples = [(d, a, "startup_ms", v) for a, q in fig.qoe.items() for v in q.startup_ms]
            samples += [(d, a, "mtp_kbps", v) for a, q in fig.qoe.items() for v in q.mtp_kbps]
            self._many(cur, "day_samples", samples)
            cur.execute(self._sql("INSERT INTO rolled (day, rolled_at) VALUES (?, ?)"),
                        (d, time.time()))

    def _many(self, cur: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            cur.executemany(self._sql(f"INSERT INTO {table} VALUES ({marks})"), rows)

    def read_days(self, day_from: str, day_to: str,
                  asset: str | None = None) -> dict[str, DayFigures]:
        """Roll-ups of the days in [day_from, day_to] (only those rolled up). With `asset`,
        that asset's rows, its figures also as the day's total."""
        out: dict[str, DayFigures] = {}
        where, args = "day >= ? AND day <= ?", [day_from, day_to]
        if asset is not None:
            where += " AND asset = ?"
            args.append(asset)
        with self._tx() as cur:
            cur.execute(self._sql("SELECT day FROM rolled WHERE day >= ? AND day <= ?"),
                        (day_from, day_to))
            for (day,) in cur.fetchall():
                out[day] = DayFigures(day)
            if asset is None:
                cur.execute(self._sql("SELECT day, downloads, listeners, bytes FROM day_totals "
                                      "WHERE day >= ? AND day <= ?"), (day_from, day_to))
                for day, dl, ls, nb in cur.fetchall():
                    if day in out:
                        out[day].total = Figures(int(dl), int(ls), int(nb))
            for row in self._select(cur, "day_assets", where, args):
                day, a, dl, ls, nb, sessions, rebuffers, exits, playing, waiting = row
                if day not in out:
                    continue
                out[day].assets[a] = Figures(int(dl), int(ls), int(nb))
                out[day].qoe[a] = Qoe(int(sessions), int(rebuffers), int(exits),
                                      float(playing), float(waiting))
                if asset is not None:
                    out[day].total = Figures(int(dl), int(ls), int(nb))
            for day, a, cc, n in self._select(cur, "day_countries", where, args):
                if day in out:
                    out[day].countries[(a, cc)] = int(n)
            for day, a, app, n in self._select(cur, "day_apps", where, args):
                if day in out:
                    out[day].apps[(a, app)] = int(n)
            for day, a, r, secs, nb in self._select(cur, "day_renditions", where, args):
                if day in out:
                    out[day].renditions[(a, r)] = [float(secs), float(nb)]
            for day, a, metric, value in self._select(cur, "day_samples", where, args):
                if day in out and a in out[day].qoe:
                    q = out[day].qoe[a]
                    (q.startup_ms if metric == "startup_ms" else q.mtp_kbps).append(float(value))
        return out

    def _select(self, cur: Any, table: str, where: str,
                args: Iterable[Any]) -> list[tuple[Any, ...]]:
        cur.execute(self._sql(f"SELECT * FROM {table} WHERE {where}"), tuple(args))
        return list(cur.fetchall())

    # --- tests and tools ----------------------------------------------------------------

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table (tests check no address is stored anywhere)."""
        with self._tx() as cur:
            out = {}
            for table in schema.ALL_TABLES:
                cur.execute(f"SELECT * FROM {table}")
                out[table] = list(cur.fetchall())
            return out
