"""The origin's analytics writer process (analytics.writer.link and .process), for real:
a child Python process writing a real SQLite database, fed through its stdin."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from analytics.events import AssetInfo
from analytics.writer import link as link_module
from analytics.writer.link import WriterLink
from settings import AnalyticsConfig

INFO = AssetInfo("ep1", "audio", 40.0, 2.0, 0, {"low": 64000})


def hit(i: int, ua: str = "Overcast/3.0") -> tuple[Any, ...]:
    return (time.time(), "ep1", f"v/x/low/seg_{i % 20:05d}.m4s", "GET", 200, 1000, None,
            f"203.0.113.{i % 250}", ua, None, "origin", INFO)


def rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM hits").fetchone()[0])
    finally:
        conn.close()


async def until(check: Any, wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return bool(check())


async def test_events_reach_the_database_through_the_process_and_flush_waits(
        tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    link = WriterLink(AnalyticsConfig(database=str(db)))
    await link.start()
    await asyncio.sleep(0.3)
    assert link._proc is None and not db.exists()  # no event yet: no process, no database
    try:
        for i in range(2500):
            assert link.submit(hit(i))
        assert link.submit_report((time.time(), "203.0.113.9", "ua", 'sid="s1",sta=p,cid="ep1"',
                                   "ep1"))
        assert await link.flush(20.0)
        assert rows(db) == 2500  # no wait beyond flush(): written when it returned
        counts = link.counts()
        assert counts == {"accepted": 2501, "written": 2501, "dropped": 0, "errors": 0,
                          "rejected": 0}, counts
        assert link.queued() == 0
    finally:
        await link.close()
    assert link._proc is None or link._proc.returncode is not None


async def test_a_killed_writer_is_started_again_and_what_it_lost_is_counted(
        tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(link_module, "RESTART_AFTER", 0.2)
    db = tmp_path / "b.sqlite3"
    link = WriterLink(AnalyticsConfig(database=str(db)))
    await link.start()
    try:
        for i in range(100):
            link.submit(hit(i))
        assert await link.flush(20.0)
        first = link._proc
        assert first is not None
        # SIGINT (a Ctrl-C reaches the whole process group) does not stop it ...
        os.kill(first.pid, signal.SIGINT)
        await asyncio.sleep(0.3)
        assert first.returncode is None
        # ... SIGKILL does; serving goes on (submit never fails on it) and a new one starts.
        os.kill(first.pid, signal.SIGKILL)
        assert await until(lambda: link._proc is None)
        for i in range(50):
            link.submit(hit(i, ua="Pocket Casts"))
        assert await until(lambda: link._proc is not None and link._proc is not first)
        assert await link.flush(20.0)
        assert rows(db) == 150
        counts = link.counts()
        assert counts["written"] == 150 and counts["dropped"] == 0, counts
    finally:
        await link.close()


async def test_the_process_ends_with_its_input_after_writing_what_it_had(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    link = WriterLink(AnalyticsConfig(database=str(db)))
    await link.start()
    for i in range(3000):
        link.submit(hit(i))
    # The process starts with the first event, not before.
    assert await until(lambda: link._proc is not None)
    proc = link._proc
    assert proc is not None
    await link.close()  # no flush first: close hands everything over and waits
    assert proc.returncode == 0
    assert rows(db) == 3000
    assert link.counts()["written"] == 3000


async def test_a_dead_database_drops_and_counts_in_the_writer(tmp_path: Path) -> None:
    # Nothing listens on port 9 of the loopback: every attempt fails at once.
    link = WriterLink(AnalyticsConfig(database="postgresql://sori@127.0.0.1:9/none",
                                      queue_size=100))
    await link.start()
    try:
        for i in range(1000):
            assert link.submit(hit(i))  # the link takes them; the writer's queue drops
            if i % 50 == 49:
                await asyncio.sleep(link_module.SEND_EVERY)  # requests come over time
        # At most the queue's 100 and the batch the writer holds (retrying) are kept.
        assert await until(lambda: link.counts()["dropped"] >= 800, 20.0), link.counts()
        counts = link.counts()
        assert counts["written"] == 0 and counts["accepted"] <= 200
        assert counts["accepted"] + counts["dropped"] == 1000, counts
        assert link.down
    finally:
        t0 = time.monotonic()
        await link.close()
        assert time.monotonic() - t0 < 5.0  # a dead database does not hold the shutdown
    assert link.counts()["dropped"] == 1000
