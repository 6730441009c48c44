"""IAB v2.3 counting and CMCD QoE over one UTC day of stored rows (pure).

Window: the UTC calendar day (IAB allows a fixed 24-hour day). A row is a response the
writer stored (client already a salted key); a day's figures come from its rows alone,
which is what makes a closed day's roll-up final and a re-roll idempotent.

Downloads: rows that count are GET answered 200/206 with more than 2 body bytes (so HEAD,
304, errors and `bytes=0-1` probes drop out) from an agent that is no bot: OPAWG's bots
and the libraries OPAWG files as bots (HTTP clients, download tools); the media
libraries players stream through (AppleCoreMedia, ExoPlayer, ...) count. Per (asset, client) the media time received is the union of the rows' spans (all
renditions, byte ranges and segments together) plus the length of spans of unknown offset;
it is a download when it reaches min(60 s, duration - 0.5 s) (60 s while live or when the
duration is unknown). One download per client per asset per day; its country and app are
the client's. Listeners: clients with at least one download that day (per asset: the
same as its downloads). Bytes: every body byte sent for the asset, whoever asked
(bandwidth is bandwidth).

QoE, per player session (CMCD `sid`; a report without one is its client's session):
- v2 play states (`sta`, ordered by the report's `ts`, else the time received):
  startup = first `p` after the first `s`; time playing (`p`) and rebuffering (`r`, once
  playback began: buffering before the first `p` is startup) is the time to the next
  state; a rebuffer is an entry into `r` after playback began; a session
  with states but never `p` exited before start;
- v1 requests: `bs` (buffer starved) counts a rebuffer per flagged request, unless the
  session also sent v2 play states (a seek empties the buffer too; only states tell it
  from a stall); when the
  first request carries `su` (startup), startup = the first later request without `su`
  minus the first request (an upper bound: the player asked again once it was playing);
  a session whose every request carries `su` exited before start;
- throughput: the session's median `mtp` (kbps); medians are taken over sessions.
Bots are left out of QoE too.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from analytics.cmcd import state_of

MIN_SECONDS = 60.0
SHORT_SLACK = 0.5  # an episode shorter than a minute counts when received to within this
MAX_STATE_GAP_MS = 3_600_000  # a state lasting longer than this is a client clock jump
EXCLUDED_KINDS = frozenset({"bot"})  # with the bot-like libraries (analytics.useragents)
UNKNOWN_COUNTRY = "ZZ"  # ISO 3166 user-assigned: "unknown or unspecified"
UNKNOWN_APP = "Unknown"


class HitRow(NamedTuple):
    """One stored response (table `hits`, in this column order)."""

    day: str
    ts: float
    asset: str
    client: str
    kind: str
    app: str | None
    device: str | None
    country: str | None
    method: str
    status: int
    nbytes: int
    rendition: str | None
    t0: float | None
    t1: float | None
    duration: float
    sid: str | None
    cmcd: str | None  # JSON of the parsed CMCD keys


class EventRow(NamedTuple):
    """One stored CMCD report (table `events`, in this column order)."""

    day: str
    ts: float
    asset: str
    client: str
    kind: str
    sid: str | None
    data: str  # JSON of the parsed CMCD keys


@dataclass
class Figures:
    downloads: int = 0
    listeners: int = 0
    bytes: int = 0


@dataclass
class Qoe:
    sessions: int = 0
    rebuffers: int = 0
    exits_before_start: int = 0
    playing_s: float = 0.0
    waiting_s: float = 0.0
    startup_ms: list[float] = field(default_factory=list)  # one sample per session
    mtp_kbps: list[float] = field(default_factory=list)  # one sample per session

    def add(self, other: Qoe) -> None:
        self.sessions += other.sessions
        self.rebuffers += other.rebuffers
        self.exits_before_start += other.exits_before_start
        self.playing_s += other.playing_s
        self.waiting_s += other.waiting_s
        self.startup_ms += other.startup_ms
        self.mtp_kbps += other.mtp_kbps


@dataclass
class DayFigures:
    """One day's figures: what a roll-up stores and reports add up."""

    day: str
    total: Figures = field(default_factory=Figures)
    assets: dict[str, Figures] = field(default_factory=dict)
    countries: dict[tuple[str, str], int] = field(default_factory=dict)  # (asset, CC)
    apps: dict[tuple[str, str], int] = field(default_factory=dict)  # (asset, app)
    renditions: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # [s, bytes]
    qoe: dict[str, Qoe] = field(default_factory=dict)


def counts(row: HitRow) -> bool:
    """Whether a response can make (part of) a download."""
    return (row.method == "GET" and row.status in (200, 206) and row.nbytes > 2
            and row.kind not in EXCLUDED_KINDS)


def threshold(duration: float) -> float:
    if duration <= 0:
        return MIN_SECONDS
    return min(MIN_SECONDS, duration - SHORT_SLACK)


def listened(spans: list[tuple[float | None, float]], duration: float) -> float:
    """Seconds in the union of [t0, t1) spans, plus the lengths of spans whose t0 is None;
    at most the duration when it is known."""
    known = sorted((t0, t1) for t0, t1 in spans if t0 is not None and t1 > t0)
    total = sum(t1 for t0, t1 in spans if t0 is None and t1 > 0)
    end = float("-inf")
    for t0, t1 in known:
        if t1 <= end:
            continue
        total += t1 - max(t0, end)
        end = t1
    return min(total, duration) if duration > 0 else total


def is_download(spans: list[tuple[float | None, float]], duration: float) -> bool:
    got = listened(spans, duration)
    return got > 0 and got >= threshold(duration) - 1e-6


@dataclass
class _Listener:
    """One (asset, client) of a day: what its counting requests received."""

    spans: list[tuple[float | None, float]] = field(default_factory=list)
    duration: float = 0.0
    country: str | None = None
    app: str | None = None


def count_day(day: str, hits: Iterable[HitRow], events: Iterable[EventRow]) -> DayFigures:
    """One pass over the rows (a database cursor's stream will do): what is kept is a
    span list per (asset, client) and a state list per player session, not the rows."""
    out = DayFigures(day)
    groups: dict[tuple[str, str], _Listener] = {}
    sessions: dict[tuple[str, str], _Session] = defaultdict(_Session)
    for row in hits:
        fig = out.assets.get(row.asset)
        if fig is None:
            fig = out.assets[row.asset] = Figures()
        nbytes = max(0, row.nbytes)
        fig.bytes += nbytes
        out.total.bytes += nbytes
        if row.cmcd and row.kind not in EXCLUDED_KINDS:
            _add_request(sessions, row)
        if not counts(row):
            continue
        who = groups.get((row.asset, row.client))
        if who is None:
            who = groups[(row.asset, row.client)] = _Listener(country=row.country, app=row.app)
        if row.t1 is not None:
            who.spans.append((row.t0, row.t1))
        if row.duration > who.duration:
            who.duration = row.duration
        if row.rendition:
            cell = out.renditions.setdefault((row.asset, row.rendition), [0.0, 0.0])
            cell[0] += _seconds(row)
            cell[1] += row.nbytes
    listeners: set[str] = set()
    for (asset, client), who in groups.items():
        if not is_download(who.spans, who.duration):
            continue
        listeners.add(client)
        fig = out.assets[asset]
        fig.downloads += 1
        fig.listeners += 1
        cc = (asset, who.country or UNKNOWN_COUNTRY)
        out.countries[cc] = out.countries.get(cc, 0) + 1
        app = (asset, who.app or UNKNOWN_APP)
        out.apps[app] = out.apps.get(app, 0) + 1
    out.total.downloads = sum(f.downloads for f in out.assets.values())
    out.total.listeners = len(listeners)
    for e in events:
        _add_event(sessions, e)
    out.qoe = _judge_all(sessions)
    for asset in out.qoe:
        out.assets.setdefault(asset, Figures())
    return out


def _seconds(row: HitRow) -> float:
    if row.t1 is not None:
        return row.t1 - (row.t0 or 0.0)
    data = _json(row.cmcd)
    d = data.get("d")
    if isinstance(d, int | float) and data.get("ot") in ("a", "v", "av"):
        return min(float(d) / 1000.0, 60.0)
    return 0.0


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class _Session:
    states: list[tuple[float, str]] = field(default_factory=list)  # (ms, sta)
    requests: list[tuple[float, bool]] = field(default_factory=list)  # (ms, su)
    starved: int = 0
    mtp: list[float] = field(default_factory=list)


def qoe(hits: Iterable[HitRow], events: Iterable[EventRow]) -> dict[str, Qoe]:
    sessions: dict[tuple[str, str], _Session] = defaultdict(_Session)
    for h in hits:
        if h.cmcd and h.kind not in EXCLUDED_KINDS:
            _add_request(sessions, h)
    for e in events:
        _add_event(sessions, e)
    return _judge_all(sessions)


def _add_request(sessions: dict[tuple[str, str], _Session], h: HitRow) -> None:
    data = _json(h.cmcd)
    if not data:
        return
    s = sessions[(h.asset, h.sid or "~" + h.client)]
    s.requests.append((h.ts * 1000.0, data.get("su") is True))
    if data.get("bs") is True:
        s.starved += 1
    _add_mtp(s, data)


def _add_event(sessions: dict[tuple[str, str], _Session], e: EventRow) -> None:
    if e.kind in EXCLUDED_KINDS:
        return
    data = _json(e.data)
    s = sessions[(e.asset, e.sid or "~" + e.client)]
    sta = state_of(data)
    if sta is not None:
        ts = data.get("ts")
        when = float(ts) if isinstance(ts, int | float) and ts > 0 else e.ts * 1000.0
        s.states.append((when, sta))
    _add_mtp(s, data)


def _judge_all(sessions: dict[tuple[str, str], _Session]) -> dict[str, Qoe]:
    out: dict[str, Qoe] = {}
    for (asset, _sid), s in sessions.items():
        q = out.setdefault(asset, Qoe())
        q.sessions += 1
        _judge(q, s)
    return out


def _add_mtp(s: _Session, data: dict[str, Any]) -> None:
    mtp = data.get("mtp")
    if isinstance(mtp, int | float) and mtp > 0:
        s.mtp.append(float(mtp))


def _judge(q: Qoe, s: _Session) -> None:
    if s.mtp:
        q.mtp_kbps.append(statistics.median(s.mtp))
    if s.states:
        states = sorted(s.states)
        started = next((t for t, st in states if st == "s"), None)
        played = next((t for t, st in states if st == "p"), None)
        if played is None:
            q.exits_before_start += 1
        elif started is not None and started <= played:
            q.startup_ms.append(played - started)
        previous = None
        for (t, st), (t_next, _) in zip(states, states[1:] + [(states[-1][0], "")],
                                        strict=True):
            gap = min(max(0.0, t_next - t), MAX_STATE_GAP_MS) / 1000.0
            if st == "p":
                q.playing_s += gap
            elif st == "r" and played is not None and t >= played:  # not startup's wait
                q.waiting_s += gap
                if previous != "r":
                    q.rebuffers += 1
            previous = st
        return
    # v1 only: `bs` flags are all there is. With v2 play states they are not counted: a
    # player's buffer also runs dry on a seek, which its states tell apart (k, not r).
    q.rebuffers += s.starved
    if not s.requests:
        return
    requests = sorted(s.requests)
    if all(su for _, su in requests):
        q.exits_before_start += 1
    elif requests[0][1]:
        later = next(t for t, su in requests if not su)
        q.startup_ms.append(later - requests[0][0])


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None
