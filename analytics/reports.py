"""The two reports of the contract, and their CSV (I/O through db).

Closed days come from the roll-ups (a closed day with raw rows and no roll-up yet is
rolled up on the way), the open day (today, UTC) from its raw rows. Listeners over a
period are the sum of daily listeners: the daily salt makes days unlinkable by design.

`summary(from, to)`:
    {"from", "to", "downloads", "listeners", "bytes",
     "assets": [{"id", "downloads", "listeners", "bytes"}, ...]  (most downloads first),
     "countries": {CC: downloads}  ("ZZ": unknown), "apps": {name: downloads},
     "days": [{"day", "downloads", "listeners", "bytes"}, ...]  (every day of the period)}
`asset(id, from, to)`: the same figures for one asset (no "assets"), plus
    "renditions": {id: seconds delivered}, "rendition_bytes": {id: bytes},
    "sessions", "rebuffers", "exits_before_start",
    "startup_ms_p50", "rebuffer_ratio", "mtp_kbps_p50"  (null where no player reported).

CSV (one table each):
    summary: day,asset,downloads,listeners,bytes   one row per day and asset with traffic
    asset:   day,downloads,listeners,bytes,sessions,rebuffers,exits_before_start,
             startup_ms_p50,rebuffer_ratio,mtp_kbps_p50   one row per day of the period
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from analytics.counting import DayFigures, Qoe, median
from analytics.db import Database
from analytics.rollup import count_raw, roll_up, shift, unrolled, utc_day

SUMMARY_CSV = ("day", "asset", "downloads", "listeners", "bytes")
ASSET_CSV = ("day", "downloads", "listeners", "bytes", "sessions", "rebuffers",
             "exits_before_start", "startup_ms_p50", "rebuffer_ratio", "mtp_kbps_p50")
MAX_DAYS = 3660
DEFAULT_DAYS = 30

DateLike = dt.date | str


def parse_period(date_from: str | None, date_to: str | None, *, now: float | None = None,
                 default_days: int = DEFAULT_DAYS) -> tuple[dt.date, dt.date]:
    """`from`/`to` query values (ISO dates, inclusive) -> dates; missing `to` is today
    (UTC), missing `from` is `default_days` - 1 days before `to`. ValueError with a
    message fit for a 400 answer when they are not dates or not a period."""
    today = dt.date.fromisoformat(utc_day(time.time() if now is None else now))
    end = _date(date_to, "to") if date_to else today
    start = _date(date_from, "from") if date_from else end - dt.timedelta(days=default_days - 1)
    _check(start, end)
    return start, end


def _date(value: DateLike, name: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        if len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a date as YYYY-MM-DD, got {str(value)[:40]!r}") \
            from None


def _check(start: dt.date, end: dt.date) -> None:
    if start > end:
        raise ValueError("from: must not be after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"the period is at most {MAX_DAYS} days")


class Reports:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    # --- figures per day ----------------------------------------------------------------

    def days(self, date_from: DateLike, date_to: DateLike,
             asset: str | None = None) -> list[DayFigures]:
        start, end = _date(date_from, "from"), _date(date_to, "to")
        _check(start, end)
        today = utc_day(self.clock())
        lo, hi = start.isoformat(), end.isoformat()
        out: list[DayFigures] = []
        found = self.db.read_days(lo, min(hi, today), asset)
        yesterday = shift(today, -1)
        for day in unrolled(self.db, lo, min(hi, yesterday)) if lo <= yesterday else ():
            fig = roll_up(self.db, day)
            found[day] = fig if asset is None else count_raw(self.db, day, asset)
        if lo <= today <= hi:
            found[today] = count_raw(self.db, today, asset)
        cursor = start
        while cursor <= end:
            key = cursor.isoformat()
            out.append(found.get(key) or DayFigures(key))
            cursor += dt.timedelta(days=1)
        return out

    # --- the reports --------------------------------------------------------------------

    def summary(self, date_from: DateLike, date_to: DateLike) -> dict[str, Any]:
        days = self.days(date_from, date_to)
        assets: dict[str, list[int]] = {}
        countries: dict[str, int] = {}
        apps: dict[str, int] = {}
        for d in days:
            for a, f in d.assets.items():
                cell = assets.setdefault(a, [0, 0, 0])
                cell[0] += f.downloads
                cell[1] += f.listeners
                cell[2] += f.bytes
            _add(countries, d.countries)
            _add(apps, d.apps)
        ranked = sorted(assets.items(), key=lambda kv: (-kv[1][0], -kv[1][2], kv[0]))
        out = self._head(days)
        out.update(
            assets=[{"id": a, "downloads": v[0], "listeners": v[1], "bytes": v[2]}
                    for a, v in ranked],
            countries=_ranked(countries), apps=_ranked(apps), days=_day_list(days))
        return out

    def asset(self, asset_id: str, date_from: DateLike, date_to: DateLike) -> dict[str, Any]:
        days = self.days(date_from, date_to, asset_id)
        countries: dict[str, int] = {}
        apps: dict[str, int] = {}
        seconds: dict[str, float] = {}
        rbytes: dict[str, int] = {}
        q = Qoe()
        for d in days:
            _add(countries, d.countries)
            _add(apps, d.apps)
            for (_a, r), (secs, nb) in d.renditions.items():
                seconds[r] = seconds.get(r, 0.0) + secs
                rbytes[r] = rbytes.get(r, 0) + int(nb)
            for one in d.qoe.values():
                q.add(one)
        out = {"id": asset_id, **self._head(days)}
        out.update(countries=_ranked(countries), apps=_ranked(apps),
                   renditions={r: round(s, 3) for r, s in sorted(seconds.items())},
                   rendition_bytes=dict(sorted(rbytes.items())), **_qoe(q),
                   days=[{**entry, **_qoe(_day_qoe(d))}
                         for entry, d in zip(_day_list(days), days, strict=True)])
        return out

    def summary_csv(self, date_from: DateLike, date_to: DateLike) -> str:
        return _csv(SUMMARY_CSV, ([d.day, a, f.downloads, f.listeners, f.bytes]
                                  for d in self.days(date_from, date_to)
                                  for a, f in sorted(d.assets.items())))

    def asset_csv(self, asset_id: str, date_from: DateLike, date_to: DateLike) -> str:
        report = self.asset(asset_id, date_from, date_to)
        return _csv(ASSET_CSV, ([_blank(day[c]) for c in ASSET_CSV] for day in report["days"]))

    @staticmethod
    def _head(days: list[DayFigures]) -> dict[str, Any]:
        return {"from": days[0].day, "to": days[-1].day,
                "downloads": sum(d.total.downloads for d in days),
                "listeners": sum(d.total.listeners for d in days),
                "bytes": sum(d.total.bytes for d in days)}


def _add(into: dict[str, int], per_asset: dict[tuple[str, str], int]) -> None:
    for (_asset, key), n in per_asset.items():
        into[key] = into.get(key, 0) + n


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _day_list(days: list[DayFigures]) -> list[dict[str, Any]]:
    return [{"day": d.day, "downloads": d.total.downloads, "listeners": d.total.listeners,
             "bytes": d.total.bytes} for d in days]


def _qoe(q: Qoe) -> dict[str, Any]:
    watched = q.playing_s + q.waiting_s
    startup = median(q.startup_ms)
    mtp = median(q.mtp_kbps)
    return {"sessions": q.sessions, "rebuffers": q.rebuffers,
            "exits_before_start": q.exits_before_start,
            "startup_ms_p50": round(startup) if startup is not None else None,
            "rebuffer_ratio": round(q.waiting_s / watched, 4) if watched > 0 else None,
            "mtp_kbps_p50": round(mtp) if mtp is not None else None}


def _day_qoe(d: DayFigures) -> Qoe:
    q = Qoe()
    for one in d.qoe.values():
        q.add(one)
    return q


def _csv(header: tuple[str, ...], rows: Iterable[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value
