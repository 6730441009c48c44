"""analytics through its database: one contract suite run on SQLite and on a real
PostgreSQL server (tests/pg_support.py), crafted request sets with the exact counts IAB
v2.3 rules give, roll-ups, retention, salts, QoE from CMCD, and a writer that neither
blocks nor breaks when the database is down.

The clock is fixed: DAY1 and DAY2 are two UTC days; "now" is DAY2 noon unless a test
says otherwise, so DAY1 is a closed day (read from its roll-up) and DAY2 the open one
(counted from raw rows).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pg_support
import psycopg
import pytest

from analytics.db import Database, open_database
from analytics.events import AssetInfo, Hit, Report
from analytics.reports import Reports
from analytics.rollup import count_raw, maintain, roll_up
from analytics.writer.recorder import Recorder
from settings import AnalyticsConfig

DAY1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY2 = DAY1 + dt.timedelta(days=1)
D1, D2 = DAY1.date().isoformat(), DAY2.date().isoformat()
NOW2 = (DAY2 + dt.timedelta(hours=12)).timestamp()  # DAY1 closed, DAY2 open
NOW3 = (DAY2 + dt.timedelta(days=1, hours=12)).timestamp()  # both closed

SEG = 4.0
DL_BYTES = 3_000_000  # the progressive file of a 300 s episode: 10,000 bytes a second
EP = AssetInfo("ep", "audio", 300.0, SEG, DL_BYTES, {"low": 48_000, "medium": 96_000})
SHORT = AssetInfo("short", "audio", 40.0, SEG, 400_000, {"low": 48_000})

OVERCAST = "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
COREMEDIA = "AppleCoreMedia/1.0.0.20K71 (iPhone; U; CPU OS 16_1 like Mac OS X; en_us)"
GOOGLEBOT = "Googlebot-News Audio"
OKHTTP = "okhttp/4.9.2"
GB, US, DE, JP = "81.2.69.142", "8.8.8.8", "2003:e0::1", "133.1.1.1"


# --- databases --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg_support.PostgresServer]:
    with pg_support.PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty database of each kind for every test."""
    if request.param == "sqlite":
        return str(tmp_path / "var" / "analytics.sqlite3")  # the directory does not exist yet
    server: pg_support.PostgresServer = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + "/" + name


def cfg_for(url: str, **over: Any) -> AnalyticsConfig:
    return dataclasses.replace(AnalyticsConfig(database=url), **over)


def record(url: str, items: Iterable[Hit | Report], now: float = NOW2,
           **over: Any) -> Recorder:
    rec = Recorder(cfg_for(url, **over), clock=lambda: now)
    rec.start()
    for item in items:
        ok = rec.submit(item) if isinstance(item, Hit) else rec.submit_report(item)
        assert ok
    assert rec.flush(30)
    rec.close()
    counts = rec.counts()
    assert counts["dropped"] == 0 and counts["errors"] == 0, counts
    assert counts["written"] == counts["accepted"]
    return rec


def reports(url: str, now: float = NOW2) -> Reports:
    return Reports(open_database(url), clock=lambda: now)


# --- request sets ---------------------------------------------------------------------

def at(day: dt.datetime, hour: float) -> float:
    return (day + dt.timedelta(hours=hour)).timestamp()


def segments(first: int, last: int, *, ts: float, ip: str, ua: str, rendition: str = "low",
             info: AssetInfo = EP, cmcd: str | None = None) -> list[Hit]:
    return [Hit(ts + n, info.id, f"v/v1/{rendition}/seg_{n:05d}.m4s", "GET", 200, 2000, None,
                ip, ua, cmcd, info=info) for n in range(first, last + 1)]


def ranged(first: int, last: int, *, ts: float, ip: str, ua: str,
           info: AssetInfo = EP) -> Hit:
    return Hit(ts, info.id, "download", "GET", 206, last - first + 1, f"bytes={first}-{last}",
               ip, ua, info=info)


def whole(*, ts: float, ip: str, ua: str, info: AssetInfo = EP) -> Hit:
    return Hit(ts, info.id, "download", "GET", 200, info.download_bytes, None, ip, ua,
               info=info)


# name -> (hits, downloads of "ep"/"short" on DAY1, on DAY2, listeners DAY1, DAY2)
SETS: dict[str, tuple[list[Hit], int, int, int, int]] = {
    "two byte probes": ([ranged(0, 1, ts=at(DAY1, 1), ip=GB, ua=OVERCAST),
                         ranged(0, 1, ts=at(DAY1, 2), ip=GB, ua=OVERCAST),
                         dataclasses.replace(whole(ts=at(DAY1, 3), ip=GB, ua=OVERCAST),
                                             method="HEAD", nbytes=0)], 0, 0, 0, 0),
    "stops after 30 s": (segments(1, 7, ts=at(DAY1, 1), ip=GB, ua=OVERCAST)
                         + [ranged(0, 299_999, ts=at(DAY1, 2), ip=US, ua=OVERCAST)], 0, 0, 0, 0),
    "twice in the day, again the next": (
        segments(1, 16, ts=at(DAY1, 1), ip=GB, ua=OVERCAST)
        + segments(1, 16, ts=at(DAY1, 20), ip=GB, ua=OVERCAST)
        + segments(1, 16, ts=at(DAY2, 1), ip=GB, ua=OVERCAST), 1, 1, 1, 1),
    "bot": ([whole(ts=at(DAY1, 1), ip=US, ua=GOOGLEBOT)]
            + segments(1, 75, ts=at(DAY1, 2), ip=US, ua=GOOGLEBOT), 0, 0, 0, 0),
    "library filed as bot": ([whole(ts=at(DAY1, 1), ip=US, ua=OKHTTP)], 0, 0, 0, 0),
    "media library (a player)": ([whole(ts=at(DAY1, 1), ip=US, ua=COREMEDIA)], 1, 0, 1, 0),
    "IPv6 neighbours in one /64": (
        segments(1, 10, ts=at(DAY1, 1), ip="2003:e0:1:2::10", ua=CHROME)
        + segments(11, 20, ts=at(DAY1, 2), ip="2003:e0:1:2:aaaa:bbbb:cccc:dddd", ua=CHROME),
        1, 0, 1, 0),
    "IPv6 in two /64s": (
        segments(1, 16, ts=at(DAY1, 1), ip="2003:e0:1:2::10", ua=CHROME)
        + segments(1, 16, ts=at(DAY1, 2), ip="2003:e0:1:3::10", ua=CHROME), 2, 0, 2, 0),
    "40-second episode fetched whole": ([whole(ts=at(DAY1, 1), ip=JP, ua=OVERCAST,
                                               info=SHORT)], 1, 0, 1, 0),
    "download resumed in three ranges": ([
        ranged(0, 199_999, ts=at(DAY1, 1), ip=DE, ua=OVERCAST),
        ranged(200_000, 399_999, ts=at(DAY1, 2), ip=DE, ua=OVERCAST),
        ranged(400_000, 699_999, ts=at(DAY1, 3), ip=DE, ua=OVERCAST)], 1, 0, 1, 0),
    "resumed ranges overlapping short of a minute": ([
        ranged(0, 299_999, ts=at(DAY1, 1), ip=DE, ua=OVERCAST),
        ranged(100_000, 499_999, ts=at(DAY1, 2), ip=DE, ua=OVERCAST),
        ranged(200_000, 549_999, ts=at(DAY1, 3), ip=DE, ua=OVERCAST)], 0, 0, 0, 0),
    "HLS segments across two renditions": (
        segments(1, 8, ts=at(DAY1, 1), ip=GB, ua=CHROME, rendition="low")
        + segments(9, 16, ts=at(DAY1, 1.5), ip=GB, ua=CHROME, rendition="medium"),
        1, 0, 1, 0),
    "304 and errors": ([dataclasses.replace(whole(ts=at(DAY1, 1), ip=GB, ua=OVERCAST),
                                            status=304, nbytes=0),
                        dataclasses.replace(whole(ts=at(DAY1, 2), ip=GB, ua=OVERCAST),
                                            status=500, nbytes=3000)], 0, 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_request_sets_count_exactly(db_url: str, name: str) -> None:
    hits, dl1, dl2, ls1, ls2 = SETS[name]
    record(db_url, hits)
    rep = reports(db_url)
    s = rep.summary(D1, D2)
    assert [(d["day"], d["downloads"], d["listeners"]) for d in s["days"]] == \
        [(D1, dl1, ls1), (D2, dl2, ls2)], name
    assert (s["downloads"], s["listeners"]) == (dl1 + dl2, ls1 + ls2)
    assert s["bytes"] == sum(h.nbytes for h in hits)
    asset = hits[0].asset
    one = rep.asset(asset, D1, D2)
    assert (one["downloads"], one["listeners"]) == (dl1 + dl2, ls1 + ls2)


def test_countries_apps_renditions_and_ranking(db_url: str) -> None:
    hits = (segments(1, 8, ts=at(DAY1, 1), ip=GB, ua=CHROME, rendition="low")
            + segments(9, 16, ts=at(DAY1, 1.5), ip=GB, ua=CHROME, rendition="medium")
            + [whole(ts=at(DAY1, 2), ip=US, ua=OVERCAST), whole(ts=at(DAY1, 3), ip=JP,
                                                                ua=OVERCAST),
               whole(ts=at(DAY1, 4), ip="10.1.2.3", ua=COREMEDIA),
               whole(ts=at(DAY1, 5), ip=JP, ua=OVERCAST, info=SHORT),
               whole(ts=at(DAY1, 6), ip=US, ua=GOOGLEBOT)])
    record(db_url, hits)
    rep = reports(db_url)
    s = rep.summary(D1, D1)
    assert s["downloads"] == 5 and s["listeners"] == 4  # JP+Overcast downloaded both
    assert s["countries"] == {"JP": 2, "GB": 1, "US": 1, "ZZ": 1}
    assert s["apps"] == {"Overcast": 3, "AppleCoreMedia": 1, "Chrome": 1}
    assert [a["id"] for a in s["assets"]] == ["ep", "short"]
    assert s["assets"][0] == {"id": "ep", "downloads": 4, "listeners": 4,
                              "bytes": 16 * 2000 + 4 * DL_BYTES}
    one = rep.asset("ep", D1, D1)
    assert one["renditions"] == {"low": 32.0, "medium": 32.0}
    assert one["rendition_bytes"] == {"low": 16_000, "medium": 16_000}
    assert one["countries"] == {"GB": 1, "JP": 1, "US": 1, "ZZ": 1}
    assert one["startup_ms_p50"] is None and one["rebuffer_ratio"] is None


def test_closed_day_roll_up_equals_raw_counting_and_is_idempotent(db_url: str) -> None:
    items: list[Hit | Report] = []
    for name in sorted(SETS):
        items += SETS[name][0]
    items += qoe_reports()
    record(db_url, items, now=NOW3)
    db = open_database(db_url)
    raw = {day: count_raw(db, day) for day in (D1, D2)}
    assert raw[D1].total.downloads >= 5 and raw[D2].total.downloads == 1  # sets share clients
    maintain(db, 90, NOW3)
    assert db.rolled_days() == {D1, D2}
    tables = db.dump()
    rolled = db.read_days(D1, D2)
    for day in (D1, D2):
        r, w = rolled[day], raw[day]
        assert r.total == w.total and r.assets == w.assets
        assert r.countries == w.countries and r.apps == w.apps
        assert r.renditions == w.renditions
        for a, q in w.qoe.items():
            assert sorted(r.qoe[a].startup_ms) == sorted(q.startup_ms)
            assert (r.qoe[a].sessions, r.qoe[a].rebuffers, r.qoe[a].exits_before_start) == \
                (q.sessions, q.rebuffers, q.exits_before_start)
    roll_up(db, D1)  # again: the same rows
    again = db.dump()
    for table in ("day_totals", "day_assets", "day_countries", "day_apps", "day_renditions",
                  "day_samples"):
        assert sorted(again[table]) == sorted(tables[table]), table
    # the reports agree whichever way a day is read
    from_rollups = reports(db_url, NOW3).summary(D1, D2)
    from_raw = reports(db_url, NOW2).summary(D2, D2)
    assert from_rollups["days"][1] == from_raw["days"][0]


def test_late_rows_of_a_closed_day_are_rolled_up_again(db_url: str) -> None:
    record(db_url, segments(1, 16, ts=at(DAY1, 1), ip=GB, ua=OVERCAST), now=NOW3)
    assert reports(db_url, NOW3).summary(D1, D1)["downloads"] == 1
    db = open_database(db_url)
    assert D1 in db.rolled_days()
    record(db_url, segments(1, 16, ts=at(DAY1, 2), ip=US, ua=OVERCAST), now=NOW3)  # an import
    assert reports(db_url, NOW3).summary(D1, D1)["downloads"] == 2


def test_retention_deletes_raw_rows_and_keeps_roll_ups(db_url: str) -> None:
    old = DAY1 - dt.timedelta(days=40)
    record(db_url, segments(1, 16, ts=at(old, 1), ip=GB, ua=OVERCAST)
           + segments(1, 16, ts=at(DAY1, 1), ip=US, ua=OVERCAST), now=NOW2, retention_days=30)
    db = open_database(db_url)
    maintain(db, 30, NOW2)
    rows = db.dump()
    assert {r[0] for r in rows["hits"]} == {D1}
    old_day = old.date().isoformat()
    s = reports(db_url).summary(old_day, D2)
    assert s["days"][0] == {"day": old_day, "downloads": 1, "listeners": 1, "bytes": 32_000}
    assert s["downloads"] == 2


def test_salts_shared_by_workers_and_expired(db_url: str) -> None:
    """Two writers (two origin workers) each see half of one listener's segments: the
    same day's salt makes them one client, one download. Salts of days before yesterday
    are deleted."""
    a = Recorder(cfg_for(db_url), clock=lambda: NOW2)
    b = Recorder(cfg_for(db_url), clock=lambda: NOW2)
    a.start()
    b.start()
    for h in segments(1, 8, ts=at(DAY2, 1), ip=GB, ua=OVERCAST):
        a.submit(h)
    for h in segments(9, 16, ts=at(DAY2, 1), ip=GB, ua=OVERCAST):
        b.submit(h)
    assert a.flush(30) and b.flush(30)
    a.close()
    b.close()
    assert reports(db_url).summary(D2, D2)["downloads"] == 1
    db = open_database(db_url)
    assert [r[0] for r in db.dump()["salts"]] == [D2]
    maintain(db, 90, (DAY2 + dt.timedelta(days=1, hours=1)).timestamp())
    assert [r[0] for r in db.dump()["salts"]] == [D2]  # yesterday's is kept
    maintain(db, 90, (DAY2 + dt.timedelta(days=2, hours=1)).timestamp())
    assert db.dump()["salts"] == []


def test_no_raw_address_is_stored_anywhere(db_url: str) -> None:
    ips = [GB, US, DE, JP, "2003:e0:1:2::10", "2003:e0:1:2:aaaa:bbbb:cccc:dddd"]
    hits = [h for i, ip in enumerate(ips)
            for h in segments(1, 20, ts=at(DAY1, i), ip=ip, ua=CHROME)]
    record(db_url, [*hits, *qoe_reports()], now=NOW3)
    db = open_database(db_url)
    maintain(db, 90, NOW3)
    stored = [str(v) for rows in db.dump().values() for row in rows for v in row]
    assert len(stored) > 1000
    needles = ips + ["2003:e0:1:2::", "2003:e0:1:2::/64", "81.2.69", "133.1.1"]
    for value in stored:
        for needle in needles:
            assert needle not in value, (needle, value)


# --- QoE -------------------------------------------------------------------------------

def _ps(sid: str, sta: str, ms: int, ip: str = GB, **extra: Any) -> Report:
    more = "".join(f",{k}={v}" for k, v in extra.items())
    base = int(at(DAY1, 3) * 1000)
    return Report(at(DAY1, 3) + ms / 1000, ip, CHROME,
                  f'e=ps,sta={sta},ts={base + ms},sid="{sid}",cid="ep"{more}')


def qoe_reports() -> list[Report]:
    """Session a: startup 800 ms, plays 10 s, rebuffers 2 s, plays 8 s, ends.
    Session b: startup 1200 ms, plays 20 s, no rebuffer. Session c: never plays."""
    return [_ps("a", "s", 0), _ps("a", "p", 800, mtp=4000), _ps("a", "r", 10_800),
            _ps("a", "p", 12_800), _ps("a", "e", 20_800),
            _ps("b", "s", 0, ip=US), _ps("b", "p", 1200, ip=US, mtp=2000),
            _ps("b", "q", 21_200, ip=US),
            _ps("c", "s", 0, ip=JP), _ps("c", "q", 5000, ip=JP)]


def test_qoe_from_cmcd_v2_reports_and_v1_requests(db_url: str) -> None:
    v1 = (segments(1, 2, ts=at(DAY1, 5), ip=DE, ua=CHROME, cmcd='sid="d",su,br=64,mtp=1000')
          + segments(3, 6, ts=at(DAY1, 5) + 1.5, ip=DE, ua=CHROME, cmcd='sid="d",br=64')
          + segments(7, 7, ts=at(DAY1, 5) + 30, ip=DE, ua=CHROME, cmcd='sid="d",bs,br=64'))
    record(db_url, [*qoe_reports(), *v1])
    one = reports(db_url).asset("ep", D1, D1)
    assert one["sessions"] == 4
    assert one["exits_before_start"] == 1
    assert one["rebuffers"] == 2  # a's entry into r, d's bs request
    # startups: a 800, b 1200, d 3500 (its first request at +1 s, the first without su at
    # +4.5 s)
    assert one["startup_ms_p50"] == 1200
    assert one["rebuffer_ratio"] == round(2 / (10 + 2 + 8 + 20), 4)
    assert one["mtp_kbps_p50"] == 2000
    assert one["days"][0]["sessions"] == 4


# --- CSV -----------------------------------------------------------------------------

def test_csv_of_both_reports(db_url: str) -> None:
    record(db_url, segments(1, 16, ts=at(DAY1, 1), ip=GB, ua=OVERCAST)
           + [whole(ts=at(DAY2, 1), ip=US, ua=OVERCAST, info=SHORT), *qoe_reports()])
    rep = reports(db_url)
    rows = list(csv.DictReader(io.StringIO(rep.summary_csv(D1, D2))))
    assert [(r["day"], r["asset"], r["downloads"]) for r in rows] == \
        [(D1, "ep", "1"), (D2, "short", "1")]
    rows = list(csv.DictReader(io.StringIO(rep.asset_csv("ep", D1, D2))))
    assert [r["day"] for r in rows] == [D1, D2]
    assert rows[0]["downloads"] == "1" and rows[0]["sessions"] == "3"
    assert rows[0]["startup_ms_p50"] == "1000" and rows[1]["startup_ms_p50"] == ""


# --- a database that is down or slow ----------------------------------------------------

@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word: a database that hangs."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


@pytest.mark.parametrize("kind", ["closed port", "never answers"])
def test_unreachable_database_drops_and_counts_while_submit_stays_fast(
        kind: str, request: pytest.FixtureRequest) -> None:
    port = (pg_support._free_port() if kind == "closed port"
            else request.getfixturevalue("silent_server"))
    url = f"postgresql://postgres@127.0.0.1:{port}/nothing"
    rec = Recorder(cfg_for(url, queue_size=100, batch_size=10), clock=lambda: NOW2)
    rec.start()
    worst = 0.0
    results = []
    t0 = time.perf_counter()
    for h in segments(1, 2000, ts=at(DAY2, 1), ip=GB, ua=OVERCAST):
        t = time.perf_counter()
        results.append(rec.submit(h))
        worst = max(worst, time.perf_counter() - t)
    total = time.perf_counter() - t0
    # never a wait on the database (its connect timeout is seconds): only the GIL's
    # switch interval (5 ms) when the writer thread runs, on a loaded machine a few times
    assert total < 0.5 and worst < 0.1, (total, worst)
    assert results.count(True) <= 100 + 10
    if kind == "closed port":
        time.sleep(0.5)
        assert rec.down
    t = time.perf_counter()
    rec.close(timeout=1.0)
    assert time.perf_counter() - t < 1.0 + 3.0 + 1.0  # close's wait + a connect timeout at most
    deadline = time.monotonic() + 5  # a batch the writer held in a hung connect: counted
    while rec.counts()["dropped"] < 2000 and time.monotonic() < deadline:  # when it gives up
        time.sleep(0.05)
    c = rec.counts()
    assert c["written"] == 0
    assert c["dropped"] == 2000, c  # every one: refused at the queue, or lost at close
    if kind == "closed port":
        assert c["errors"] >= 1


def test_sqlite_locked_by_another_writer_waits_and_writes_later(tmp_path: Any) -> None:
    path = tmp_path / "a.sqlite3"
    db = open_database(str(path), connect_timeout=0.2)
    db.ping()  # schema in place
    rec = Recorder(cfg_for(str(path)), database=db, clock=lambda: NOW2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        rec.start()
        for h in segments(1, 16, ts=at(DAY2, 1), ip=GB, ua=OVERCAST):
            assert rec.submit(h)
        time.sleep(1.5)
        assert rec.counts()["written"] == 0 and rec.counts()["errors"] >= 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert rec.flush(20)
    rec.close()
    assert rec.counts()["written"] == 16 and rec.counts()["dropped"] == 0
    assert reports(str(path)).summary(D2, D2)["downloads"] == 1


def test_open_database_does_not_connect(tmp_path: Any) -> None:
    db: Database = open_database(f"postgresql://postgres@127.0.0.1:{pg_support._free_port()}/x")
    assert db.dialect == "postgresql"
    sq = open_database(str(tmp_path / "deep" / "er" / "a.sqlite3"))
    assert not (tmp_path / "deep").exists()
    sq.ping()
    assert (tmp_path / "deep" / "er" / "a.sqlite3").exists()


def test_unreadable_events_are_counted_and_the_rest_written(db_url: str) -> None:
    rec = Recorder(cfg_for(db_url), clock=lambda: NOW2)
    rec.start()
    good = segments(1, 16, ts=at(DAY2, 1), ip=GB, ua=OVERCAST)
    broken = dataclasses.replace(good[0], ua=None)  # type: ignore[arg-type]
    assert all(rec.submit(h) for h in good[:8])
    assert rec.submit(broken)
    assert rec.submit_report(Report(at(DAY2, 1), GB, CHROME, "nothing=valid"))
    assert rec.submit_report(Report(at(DAY2, 1), GB, CHROME, 'e=ps,sta=p,cid="bad id!"'))
    assert all(rec.submit(h) for h in good[8:])
    assert rec.flush(30)
    rec.close()
    assert rec.counts() == {"accepted": 19, "written": 16, "dropped": 1, "errors": 1,
                            "rejected": 2}
    assert reports(db_url).summary(D2, D2)["downloads"] == 1


def test_concurrent_roll_ups_of_one_day_agree(db_url: str) -> None:
    """Several processes (here threads with connections of their own) may roll a day up at
    the same moment (reports and writers of every worker): none fails, one result stays."""
    import threading

    record(db_url, SETS["IPv6 in two /64s"][0], now=NOW3)
    dbs = [open_database(db_url) for _ in range(4)]
    errors: list[BaseException] = []

    def roll(db: Database) -> None:
        try:
            for _ in range(5):
                roll_up(db, D1)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=roll, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    rows = dbs[0].dump()
    assert len(rows["day_totals"]) == 1 and rows["day_totals"][0][1:] == (2, 2, 64_000)
    assert len(rows["rolled"]) == 1


def test_the_writer_rolls_up_closed_days_and_applies_retention_itself(db_url: str) -> None:
    old = DAY1 - dt.timedelta(days=40)
    record(db_url, segments(1, 16, ts=at(old, 1), ip=GB, ua=OVERCAST)
           + segments(1, 16, ts=at(DAY1, 1), ip=US, ua=OVERCAST), now=NOW2)
    db = open_database(db_url)
    rec = Recorder(cfg_for(db_url, retention_days=30), clock=lambda: NOW3)
    rec.start()  # its first pass runs at once
    deadline = time.monotonic() + 20
    while db.rolled_days() != {old.date().isoformat(), D1} and time.monotonic() < deadline:
        time.sleep(0.05)
    while {r[0] for r in db.dump()["hits"]} != {D1} and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.close()
    assert db.rolled_days() == {old.date().isoformat(), D1}
    assert {r[0] for r in db.dump()["hits"]} == {D1}
    assert reports(db_url, NOW3).summary(old.date().isoformat(), D1)["downloads"] == 2


def test_log_lines_count_like_origin_hits(db_url: str) -> None:
    """Access log lines (no Range in a log): a download resumed in three 206 lines of
    20 s, 20 s and 30 s of media is one download; one 206 line of 30 s is none; segments
    through a signed URL's token count under their asset."""
    from analytics.combined_log import parse

    def line(ip: str, target: str, status: int, nbytes: int, hour: int) -> str:
        return (f'{ip} - - [01/Nov/2026:{hour:02d}:00:00 +0000] "GET {target} HTTP/1.1" '
                f'{status} {nbytes} "-" "{OVERCAST}"')

    lines = [line(DE, "/v1/assets/ep/download?token=t", 206, 200_000, 1),
             line(DE, "/v1/assets/ep/download?token=t", 206, 200_000, 2),
             line(DE, "/v1/assets/ep/download?token=t", 206, 300_000, 3),
             line(US, "/v1/assets/ep/download", 206, 300_000, 4),
             *[line(GB, f"/assets/ep/~tok/v/v1/low/seg_{n:05d}.m4s?CMCD=sid%3D%22z%22", 200,
                    2000, 5) for n in range(1, 17)],
             "not a log line"]
    hits = [parse(x) for x in lines]
    assert hits[-1] is None
    record(db_url, [dataclasses.replace(h, info=EP) for h in hits if h is not None])
    one = reports(db_url).asset("ep", D1, D1)
    assert (one["downloads"], one["listeners"], one["sessions"]) == (2, 2, 1)
    assert one["countries"] == {"DE": 1, "GB": 1}


def test_salts_leave_the_writer_s_memory_too(db_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import analytics.writer.recorder as recorder_module

    monkeypatch.setattr(recorder_module, "MAINTAIN_EVERY", 0.2)
    now = [NOW2]
    rec = Recorder(cfg_for(db_url), clock=lambda: now[0])
    rec.start()
    for h in segments(1, 16, ts=at(DAY1, 1), ip=GB, ua=OVERCAST):
        rec.submit(h)
    assert rec.flush(30)
    time.sleep(0.5)
    assert D1 in rec._salts  # yesterday's: late events of the day still come
    now[0] = NOW3 + 86400  # DAY1 is three days back
    deadline = time.monotonic() + 10
    while D1 in rec._salts and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.close()
    assert D1 not in rec._salts
    assert open_database(db_url).dump()["salts"] == []
