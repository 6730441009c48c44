"""IAB counting and CMCD QoE over rows (pure: rows are built here, as the writer stores them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analytics.counting import EventRow, HitRow, count_day, is_download, listened, qoe, threshold

DAY = "2026-11-01"


def hit(client: str = "c1", *, asset: str = "ep", t0: float | None = 0.0, t1: float | None = 4.0,
        kind: str = "app", app: str | None = "Overcast", country: str | None = "GB",
        method: str = "GET", status: int = 200, nbytes: int = 1000, duration: float = 300.0,
        rendition: str | None = "low", ts: float = 0.0, sid: str | None = None,
        cmcd: dict[str, Any] | None = None) -> HitRow:
    return HitRow(DAY, ts, asset, client, kind, app, None, country, method, status, nbytes,
                  rendition, t0, t1, duration, sid, json.dumps(cmcd) if cmcd else None)


def minute(client: str = "c1", **kw: Any) -> list[HitRow]:
    return [hit(client, t0=4.0 * i, t1=4.0 * (i + 1), **kw) for i in range(15)]


def test_union_of_spans() -> None:
    assert listened([(0, 10), (5, 15), (20, 30)], 300) == 25
    assert listened([(0, 10), (0, 10), (2, 3)], 300) == 10
    assert listened([(None, 10), (0, 10)], 300) == 20  # an unplaced length adds
    assert listened([(0, 100), (None, 100)], 120) == 120  # never past the duration
    assert listened([], 300) == 0


def test_threshold() -> None:
    assert threshold(300) == 60
    assert threshold(40) == 39.5
    assert threshold(0) == 60  # live or unknown
    assert is_download([(0, 60)], 300) and not is_download([(0, 59.9)], 300)
    assert is_download([(0, 39.6)], 40) and not is_download([(0, 39)], 40)
    assert not is_download([], 0.3)


def test_downloads_and_listeners() -> None:
    rows = (minute("c1") + minute("c2") + minute("c2", asset="other")
            + minute("bot", kind="bot") + [hit("c3", t0=0, t1=30)])
    fig = count_day(DAY, rows, [])
    assert fig.assets["ep"].downloads == 2 and fig.assets["other"].downloads == 1
    assert fig.total.downloads == 3 and fig.total.listeners == 2  # c2 counts once
    assert fig.total.bytes == 1000 * len(rows)  # bytes: whoever asked
    assert fig.countries == {("ep", "GB"): 2, ("other", "GB"): 1}
    assert fig.renditions[("ep", "low")] == [150.0, 31_000.0]  # bots' segments left out


@pytest.mark.parametrize("change", [
    {"method": "HEAD"}, {"status": 304}, {"status": 404}, {"nbytes": 2}, {"kind": "bot"}])
def test_excluded_rows(change: dict[str, Any]) -> None:
    assert count_day(DAY, minute(**change), []).total.downloads == 0


def test_media_libraries_count_and_unknowns_are_named() -> None:
    fig = count_day(DAY, minute(kind="library", app="AppleCoreMedia", country=None), [])
    assert fig.total.downloads == 1
    assert fig.countries == {("ep", "ZZ"): 1} and fig.apps == {("ep", "AppleCoreMedia"): 1}
    fig = count_day(DAY, minute(kind="unknown", app=None), [])
    assert fig.apps == {("ep", "Unknown"): 1}


def ev(sid: str | None, sta: str, ms: int, *, client: str = "c1", kind: str = "browser",
       **extra: Any) -> EventRow:
    return EventRow(DAY, ms / 1000, "ep", client, kind, sid,
                    json.dumps({"e": "ps", "sta": sta, "ts": 1_000_000 + ms, **extra}))


def test_qoe_v2_states() -> None:
    events = [ev("a", "p", 900), ev("a", "s", 0), ev("a", "r", 10_900), ev("a", "r", 11_900),
              ev("a", "p", 12_900), ev("a", "a", 22_900), ev("a", "p", 32_900),
              ev("a", "e", 34_900),
              ev("b", "s", 0), ev("b", "r", 500), ev("b", "q", 4000),
              ev("x", "s", 0, kind="bot")]
    q = qoe([], events)["ep"]
    assert q.sessions == 2 and q.exits_before_start == 1
    assert q.startup_ms == [900.0]
    assert q.rebuffers == 1  # r, r is one stall; b's r before playing is startup
    assert q.playing_s == pytest.approx(10 + 10 + 2)
    assert q.waiting_s == pytest.approx(2)  # a's stall; b's wait before playing is startup


def test_qoe_v1_requests() -> None:
    rows = [hit(sid="d", ts=100.0, cmcd={"su": True, "mtp": 1000}),
            hit(sid="d", ts=100.4, cmcd={"su": True, "mtp": 3000}),
            hit(sid="d", ts=102.5, cmcd={"mtp": 5000}),
            hit(sid="d", ts=150.0, cmcd={"bs": True}),
            hit(sid="e", ts=100.0, cmcd={"su": True}),
            hit(sid="f", ts=100.0, cmcd={"br": 64}),
            hit(ts=100.0)]  # no CMCD: no session
    q = qoe(rows, [])["ep"]
    assert q.sessions == 3
    assert q.startup_ms == [pytest.approx(2500.0)]
    assert q.rebuffers == 1 and q.exits_before_start == 1
    assert q.mtp_kbps == [3000.0]  # the session's median


def test_v1_starvation_flags_do_not_count_when_the_session_sent_play_states() -> None:
    # dash.js flags `bs` on the requests after a seek; its v2 states say k, not r.
    rows = [hit(sid="g", ts=100.0, cmcd={"su": True}), hit(sid="g", ts=110.0, cmcd={"bs": True}),
            hit(sid="g", ts=110.2, cmcd={"bs": True})]
    events = [ev("g", "s", 0), ev("g", "p", 500), ev("g", "k", 10_000), ev("g", "p", 10_400)]
    q = qoe(rows, events)["ep"]
    assert q.sessions == 1 and q.rebuffers == 0 and q.startup_ms == [500.0]
    assert qoe(rows, [])["ep"].rebuffers == 2  # v1 alone: the flags are all there is


def test_session_without_sid_is_its_client() -> None:
    q = qoe([], [ev(None, "s", 0, client="k1"), ev(None, "p", 700, client="k1"),
                 ev(None, "s", 0, client="k2")])["ep"]
    assert q.sessions == 2 and q.startup_ms == [700.0] and q.exits_before_start == 1


def test_cmcd_duration_counts_rendition_seconds_without_a_span() -> None:
    rows = [hit(t0=None, t1=None, cmcd={"d": 4004, "ot": "a"}),
            hit(t0=None, t1=None, cmcd={"d": 4004, "ot": "m"})]  # a manifest: no media time
    assert count_day(DAY, rows, []).renditions[("ep", "low")][0] == pytest.approx(4.004)
