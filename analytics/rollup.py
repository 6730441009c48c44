"""Daily roll-ups, retention and salt expiry (I/O through db).

A closed day (before today, UTC) is counted once from its raw rows and the figures stored
in the roll-up tables; reports read closed days from there, so the raw rows can go after
`retention_days` without changing any report. Rolling a day up again writes the same rows
(it replaces them), which is why a late row of a closed day just forgets the day's
roll-up (see Database.insert) for the next pass to redo.
"""

from __future__ import annotations

import datetime as dt
import time
from functools import lru_cache

from analytics.counting import DayFigures, count_day
from analytics.db import Database


def utc_day(ts: float) -> str:
    return _day_of(int(ts // 86400))


@lru_cache(maxsize=64)
def _day_of(days: int) -> str:  # UNIX time has no leap seconds: a day is 86400 s
    return (dt.date(1970, 1, 1) + dt.timedelta(days=days)).isoformat()


def shift(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def count_raw(db: Database, day: str, asset: str | None = None) -> DayFigures:
    events = db.events(day, asset)  # read first: the hits' stream holds the connection
    return count_day(day, db.iter_hits(day, asset), events)


def roll_up(db: Database, day: str) -> DayFigures:
    fig = count_raw(db, day)
    db.write_day(fig)
    return fig


def unrolled(db: Database, first: str, last: str) -> list[str]:
    """Days in [first, last] with raw rows and no roll-up (index probes, day by day)."""
    done = db.rolled_days()
    out = []
    day = first
    while day <= last:
        if day not in done and db.has_raw(day):
            out.append(day)
        day = shift(day, 1)
    return out


def roll_up_closed(db: Database, today: str, retention_days: int) -> list[str]:
    """Roll up every day before `today` that has raw rows and no roll-up yet: the days
    the retention keeps, probed one by one, and any older day (a late import) found by
    a range scan of the tables' old end."""
    cutoff = shift(today, -retention_days)
    done = db.rolled_days()
    todo = [d for d in db.raw_days(cutoff) if d not in done]
    todo += unrolled(db, cutoff, shift(today, -1))
    for day in todo:
        roll_up(db, day)
    return todo


def maintain(db: Database, retention_days: int, now: float | None = None) -> dict[str, int]:
    """The periodic pass of the writer: roll up closed days, then delete raw rows older
    than the retention (never before their day is rolled up) and salts of days before
    yesterday."""
    today = utc_day(time.time() if now is None else now)
    rolled = roll_up_closed(db, today, retention_days)
    deleted = db.delete_raw_before(shift(today, -retention_days))
    salts = db.delete_salts_before(shift(today, -1))
    return {"rolled": len(rolled), "raw_deleted": deleted, "salts_deleted": salts}
