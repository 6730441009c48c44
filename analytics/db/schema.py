"""The tables, one schema for SQLite and PostgreSQL (types both accept).

Raw rows (kept `retention_days`): `hits` (responses), `events` (CMCD reports), `salts`
(today's and yesterday's HMAC salts only). Daily roll-ups (kept for good): `day_totals`,
`day_assets`, `day_countries`, `day_apps`, `day_renditions`, `day_samples` (per-session
startup and throughput figures, so that medians over any period stay exact), and `rolled`
(which closed days have their roll-up). No column holds a client address.
"""

from __future__ import annotations

HIT_COLUMNS = ("day", "ts", "asset", "client", "kind", "app", "device", "country", "method",
               "status", "nbytes", "rendition", "t0", "t1", "duration", "sid", "cmcd")
EVENT_COLUMNS = ("day", "ts", "asset", "client", "kind", "sid", "data")

TABLES = (
    """CREATE TABLE IF NOT EXISTS hits (
        day TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, asset TEXT NOT NULL,
        client TEXT NOT NULL, kind TEXT NOT NULL, app TEXT, device TEXT, country TEXT,
        method TEXT NOT NULL, status INTEGER NOT NULL, nbytes BIGINT NOT NULL,
        rendition TEXT, t0 DOUBLE PRECISION, t1 DOUBLE PRECISION,
        duration DOUBLE PRECISION NOT NULL, sid TEXT, cmcd TEXT)""",
    "CREATE INDEX IF NOT EXISTS hits_day_asset ON hits (day, asset)",
    """CREATE TABLE IF NOT EXISTS events (
        day TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, asset TEXT NOT NULL,
        client TEXT NOT NULL, kind TEXT NOT NULL, sid TEXT, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_day_asset ON events (day, asset)",
    "CREATE TABLE IF NOT EXISTS salts (day TEXT PRIMARY KEY, salt TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rolled (day TEXT PRIMARY KEY, rolled_at DOUBLE PRECISION)",
    """CREATE TABLE IF NOT EXISTS day_totals (
        day TEXT PRIMARY KEY, downloads BIGINT NOT NULL, listeners BIGINT NOT NULL,
        bytes BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS day_assets (
        day TEXT NOT NULL, asset TEXT NOT NULL, downloads BIGINT NOT NULL,
        listeners BIGINT NOT NULL, bytes BIGINT NOT NULL, sessions BIGINT NOT NULL,
        rebuffers BIGINT NOT NULL, exits BIGINT NOT NULL, playing_s DOUBLE PRECISION NOT NULL,
        waiting_s DOUBLE PRECISION NOT NULL, PRIMARY KEY (day, asset))""",
    """CREATE TABLE IF NOT EXISTS day_countries (
        day TEXT NOT NULL, asset TEXT NOT NULL, country TEXT NOT NULL,
        downloads BIGINT NOT NULL, PRIMARY KEY (day, asset, country))""",
    """CREATE TABLE IF NOT EXISTS day_apps (
        day TEXT NOT NULL, asset TEXT NOT NULL, app TEXT NOT NULL, downloads BIGINT NOT NULL,
        PRIMARY KEY (day, asset, app))""",
    """CREATE TABLE IF NOT EXISTS day_renditions (
        day TEXT NOT NULL, asset TEXT NOT NULL, rendition TEXT NOT NULL,
        seconds DOUBLE PRECISION NOT NULL, bytes BIGINT NOT NULL,
        PRIMARY KEY (day, asset, rendition))""",
    """CREATE TABLE IF NOT EXISTS day_samples (
        day TEXT NOT NULL, asset TEXT NOT NULL, metric TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS day_samples_day ON day_samples (day, asset)",
)

ROLLUP_TABLES = ("day_totals", "day_assets", "day_countries", "day_apps", "day_renditions",
                 "day_samples")
ALL_TABLES = ("hits", "events", "salts", "rolled", *ROLLUP_TABLES)
