"""The origin's object cache and single-flight loader (origin.http.object_cache)."""

from __future__ import annotations

import asyncio

import pytest

from origin.http.object_cache import LruDict, ObjectCache, SingleFlight
from origin.http.representation import accepts_gzip, gzip_etag


def test_lru_by_bytes() -> None:
    c: ObjectCache[str] = ObjectCache(max_bytes=100, max_object=60)
    assert c.put("a", "A", 40)
    assert c.put("b", "B", 40)
    assert c.get("a") == "A"  # a is now the most recent
    assert c.put("c", "C", 40)  # evicts b, the least recently used
    assert c.get("b") is None
    assert c.get("a") == "A" and c.get("c") == "C"
    assert c.size == 80
    assert not c.put("big", "X", 61)  # over max_object
    assert c.size == 80


def test_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("origin.http.object_cache.time.monotonic", lambda: now[0])
    c: ObjectCache[str] = ObjectCache(100, 100)
    c.put("m", "M", 10, ttl=2.0)
    assert c.get("m") == "M"
    now[0] += 2.5
    assert c.get("m") is None
    assert c.size == 0


def test_zero_capacity_admits_nothing() -> None:
    c: ObjectCache[str] = ObjectCache(0, 100)
    assert not c.put("a", "A", 1)


def test_lru_dict() -> None:
    d: LruDict[int] = LruDict(2)
    d.put("a", 1)
    d.put("b", 2)
    d.get("a")
    d.put("c", 3)
    assert d.get("b") is None and d.get("a") == 1 and d.get("c") == 3


async def test_single_flight_shares_one_load() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    tasks = [asyncio.create_task(flight.run("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == [42] * 50
    assert calls == 1
    assert len(flight) == 0


async def test_single_flight_failure_is_shared_and_not_remembered() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise OSError("down")

    results = await asyncio.gather(*(flight.run("k", failing) for _ in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert calls == 1

    async def ok() -> int:
        return 1

    assert await flight.run("k", ok) == 1


async def test_single_flight_survives_a_cancelled_caller() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def load() -> int:
        await gate.wait()
        return 7

    first = asyncio.create_task(flight.run("k", load))
    second = asyncio.create_task(flight.run("k", load))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == 7


@pytest.mark.parametrize(
    ("value", "ok"),
    [(None, False), ("", False), ("gzip", True), ("gzip, deflate, br", True),
     ("deflate", False), ("gzip;q=0", False), ("gzip;q=0.5", True), ("*", True),
     ("*;q=0", False), ("identity", False), ("GZIP", True), ("x-gzip", True),
     ("gzip;q=bogus", False)],
)
def test_accepts_gzip(value: str | None, ok: bool) -> None:
    assert accepts_gzip(value) is ok


def test_gzip_etag_differs_and_stays_strong() -> None:
    assert gzip_etag('"abc"') == '"abc-gz"'
