"""Listening analytics through the real origin (issue 13): `sori serve` on a real socket,
espeak-ng episodes packaged by `sori package`, requests crafted per counting rule, and
the exact figures each rule must give read back from GET /v1/analytics/*.

Each rule is checked as the change it makes to today's figures of its asset (the
module's origin and database are shared, so earlier rules do not hide later ones). The
origin trusts 127.0.0.1 as a proxy, so clients name their address in X-Forwarded-For
(documentation ranges 203.0.113.0/24, 198.51.100.0/24 and 2001:db8::/32), except where a
test connects from 127.0.0.2 to be an untrusted peer.

Also here: the CMCD collector (v2 reports, CORS, bad bodies), CSV, the API key, a
private asset whose token must never reach the database, analytics disabled, a dead
database (serving goes on, drops show on /metrics), and the fast lane recording a
request whose query is a lone `CMCD=` (in-process, to see which path answered).
"""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
import re
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import m3u8
import pytest
from real_clients import (
    HttpClient,
    Library,
    Origin,
    Response,
    free_port,
    local_env,
    make_speech,
    package,
    require_tool,
    serve,
)
from test_origin_support import ASSET, SEGMENT, publish

from analytics.events import AssetInfo, Hit
from analytics.useragents import classify
from origin.analytics import RECORDER_KEY
from origin.app import HITS_KEY, create_app
from origin.http.request_head import parse_head
from origin.live import peers
from origin.observe import hits as hits_module
from settings import AnalyticsConfig, Config
from signing.tokens import mint
from storage.base import Store

API_KEY = "analytics-test-key-0001"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SIGNING_KEYS = {"t1": "a-signing-secret-for-the-analytics-tests"}
UA_OVERCAST = "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)"
UA_PODCASTS = "Podcasts/1650.20 CFNetwork/1408.0.4 Darwin/22.5.0"
UA_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.0.0 Safari/537.36")
UA_BOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"
UA_LIBRARY = "Lavf/60.16.100"  # ffmpeg's HTTP client, in OPAWG's libraries list (as a bot)

EP40, EP90, SECRET = "ep40", "ep90", "secret"
WORDS = ("Welcome back to the show. Today we talk about how podcasts are counted, why a "
         "minute of listening is the line, and what a player tells the server while it "
         "plays. ")


# --- the site ---------------------------------------------------------------------------------


@dataclass
class Site:
    origin: Origin
    db: Path
    store: Path
    work: Path
    segments: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)


def _episode(work: Path, name: str, seconds: float) -> Path:
    """espeak-ng speech cut to exactly `seconds` (ffmpeg)."""
    ffmpeg = require_tool("ffmpeg", "apt-get install ffmpeg")
    raw = make_speech(work / f"{name}-raw.wav", WORDS * (int(seconds / 12) + 2),
                      minimum=seconds + 1.0)
    out = work / f"{name}.wav"
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(raw), "-t", f"{seconds}",
                    str(out)], check=True, capture_output=True, timeout=60)
    return out


def _private_copy(store: Path, source: str, asset: str) -> None:
    """`asset`: a copy of `source`'s files with a record of its own that says private."""
    import shutil

    shutil.copytree(store / source, store / asset)
    record = store / asset / "asset.json"
    rec = json.loads(record.read_text())
    record.write_text(json.dumps({**rec, "id": asset, "access": "private"}))


@pytest.fixture(scope="module")
def site(lib: Library, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("analytics")
    store = lib.copy(work / "store")
    env = local_env(store)
    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(lambda n, s: package(env, _episode(work, n, s), n), name, secs)
                for name, secs in ((EP40, 40.0), (EP90, 90.0))]
        for job in jobs:
            job.result()
    _private_copy(store, "speech", SECRET)
    db = work / "analytics.sqlite3"
    env = local_env(store, SORI_ANALYTICS_DATABASE=str(db),
                    SORI_ORIGIN_TRUSTED_PROXIES='["127.0.0.1"]',
                    SORI_SECURITY_API_KEYS=json.dumps([API_KEY]),
                    SORI_SECURITY_SIGNING_KEYS=json.dumps(SIGNING_KEYS))
    with serve(env, work / "serve.log") as origin:
        yield Site(origin, db, store, work)


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def figures(site: Site, asset: str | None = None) -> dict[str, Any]:
    """Today's report of `asset` (or the summary)."""
    path = f"/v1/analytics/assets/{asset}" if asset else "/v1/analytics/summary"
    r = HttpClient(site.origin.base).get(f"{path}?from={today()}&to={today()}", AUTH)
    assert r.status == 200, r.body
    assert r.header("Cache-Control") == "no-store"
    data: dict[str, Any] = json.loads(r.body)
    return data


class Change:
    """What a block of requests changed in an asset's figures of today."""

    def __init__(self, site: Site, asset: str) -> None:
        self.site, self.asset = site, asset
        self.before = figures(site, asset)

    def now(self) -> dict[str, int]:
        after = figures(self.site, self.asset)
        return {k: after[k] - self.before[k] for k in ("downloads", "listeners", "bytes")}


class Listener:
    """One client: a User-Agent and an address (X-Forwarded-For through the trusted proxy,
    or a loopback source address of its own)."""

    def __init__(self, site: Site, ua: str, xff: str | None = None,
                 source: str | None = None) -> None:
        self.site = site
        self.http = HttpClient(site.origin.base, source=source)
        self.headers = {"User-Agent": ua}
        if xff is not None:
            self.headers["X-Forwarded-For"] = xff
        self.received = 0  # body bytes

    def request(self, method: str, path: str, **extra: str) -> Response:
        r = self.http.request(method, path, {**self.headers, **extra})
        self.received += len(r.body)
        return r

    def get(self, path: str, **extra: str) -> Response:
        return self.request("GET", path, **extra)

    def play(self, asset: str, start: float = 0.0, end: float = 1e9, *, base: str | None = None,
             query: str = "", headers: dict[str, str] | None = None) -> int:
        """Master, media playlist, init and the segments of the first rendition that
        overlap [start, end), the way a player asks; the number of segments."""
        base = base or f"/assets/{asset}/"
        assert self.get(base + "master.m3u8").status == 200
        n = 0
        for uri, t0, t1 in segments(self.site, asset):
            if uri.endswith("init.mp4"):
                r = self.get(base + uri)
            elif t0 < end and t1 > start:
                r = self.get(base + uri + query, **(headers or {}))
                n += 1
            else:
                continue
            assert r.status == 200, (uri, r.status, r.body[:200])
        return n


def segments(site: Site, asset: str) -> list[tuple[str, float, float]]:
    """(path below the asset, media start, end) of the media playlist of the first variant,
    its init first; read from the store's files (no request is counted)."""
    found = site.segments.get(asset)
    if found is not None:
        return found
    root = site.store / asset
    master = m3u8.loads((root / "master.m3u8").read_text())
    variant = master.playlists[0].uri
    media = m3u8.loads((root / variant).read_text())
    folder = variant.rsplit("/", 1)[0]
    out = [(f"{folder}/{media.segment_map[0].uri}", 0.0, 0.0)]
    t = 0.0
    for seg in media.segments:
        out.append((f"{folder}/{seg.uri}", t, t + seg.duration))
        t += seg.duration
    site.segments[asset] = out
    return out


def duration(site: Site, asset: str) -> float:
    return segments(site, asset)[-1][2]


# --- the counting rules ---------------------------------------------------------------------


def test_two_byte_probes_are_no_download(site: Site) -> None:
    change = Change(site, EP90)
    probe = Listener(site, UA_OVERCAST, "203.0.113.1")
    for _ in range(2):
        r = probe.get(f"/v1/assets/{EP90}/download", Range="bytes=0-1")
        assert r.status == 206 and len(r.body) == 2
    assert change.now() == {"downloads": 0, "listeners": 0, "bytes": 4}


def test_a_listener_who_stops_after_30_seconds_is_no_download(site: Site) -> None:
    assert duration(site, EP90) > 85
    change = Change(site, EP90)
    listener = Listener(site, UA_CHROME, "203.0.113.2")
    assert listener.play(EP90, 0.0, 30.0) == 8  # 8 segments of about 4 s: 0-32 s
    assert change.now() == {"downloads": 0, "listeners": 0, "bytes": listener.received}


def test_the_same_listener_twice_in_the_day_is_one_download(site: Site) -> None:
    change = Change(site, EP90)
    listener = Listener(site, UA_PODCASTS, "203.0.113.3")
    listener.play(EP90)
    assert change.now() == {"downloads": 1, "listeners": 1, "bytes": listener.received}
    listener.play(EP90)
    assert change.now() == {"downloads": 1, "listeners": 1, "bytes": listener.received}


@pytest.mark.parametrize("ua", [UA_BOT, UA_LIBRARY])
def test_bots_and_libraries_are_no_listeners(site: Site, ua: str) -> None:
    agent = classify(ua)
    assert agent.name == ("Googlebot" if ua == UA_BOT else "ffmpeg") and not agent.counts
    change = Change(site, EP90)
    client = Listener(site, ua, "203.0.113.4")
    client.play(EP90)
    # Their bytes are bandwidth all the same.
    assert change.now() == {"downloads": 0, "listeners": 0, "bytes": client.received}


def test_two_ipv6_neighbours_in_one_64_through_the_proxy_are_one_listener(site: Site) -> None:
    change = Change(site, EP90)
    a = Listener(site, UA_OVERCAST, "2001:db8:1:2::10")
    b = Listener(site, UA_OVERCAST, "2001:db8:1:2:aaaa::20")
    a.play(EP90, 0.0, 36.0)  # about 36 s each: neither alone reaches a minute
    assert change.now()["downloads"] == 0
    b.play(EP90, 36.0, 72.0)
    assert change.now() == {"downloads": 1, "listeners": 1, "bytes": a.received + b.received}
    # The same in another /64 is somebody else, who has not listened a minute.
    Listener(site, UA_OVERCAST, "2001:db8:1:3::10").play(EP90, 36.0, 72.0)
    assert change.now()["downloads"] == 1


def test_a_forwarded_for_from_an_untrusted_peer_is_not_believed(site: Site) -> None:
    change = Change(site, EP90)
    # 127.0.0.2 is not a trusted proxy: both halves are its own, whatever they claim.
    first = Listener(site, UA_OVERCAST, "198.51.100.7", source="127.0.0.2")
    second = Listener(site, UA_OVERCAST, "198.51.100.8", source="127.0.0.2")
    first.play(EP90, 0.0, 36.0)
    second.play(EP90, 36.0, 72.0)
    # Believed, they would be two clients of 36 s each: no download.
    assert change.now()["downloads"] == 1


def test_a_40_second_episode_counts_when_fetched_whole(site: Site) -> None:
    assert 39.0 < duration(site, EP40) < 41.0
    change = Change(site, EP40)
    almost = Listener(site, UA_OVERCAST, "203.0.113.10")
    almost.play(EP40, 0.0, duration(site, EP40) - 4.5)  # all but the last segment
    assert change.now()["downloads"] == 0
    whole = Listener(site, UA_OVERCAST, "203.0.113.11")
    whole.play(EP40)
    assert change.now() == {"downloads": 1, "listeners": 1,
                            "bytes": almost.received + whole.received}


def test_a_download_resumed_in_three_ranges_is_one_download(site: Site) -> None:
    path = f"/v1/assets/{EP40}/download"
    size = int(HttpClient(site.origin.base).request("HEAD", path).header("Content-Length") or 0)
    assert size > 100_000
    change = Change(site, EP40)
    client = Listener(site, UA_PODCASTS, "203.0.113.12")
    cuts = [0, size // 3, 2 * size // 3, size]
    for i in range(3):
        r = client.get(path, Range=f"bytes={cuts[i]}-{cuts[i + 1] - 1}")
        assert r.status == 206 and len(r.body) == cuts[i + 1] - cuts[i]
        if i < 2:
            assert change.now()["downloads"] == 0
    assert change.now() == {"downloads": 1, "listeners": 1, "bytes": size}


def test_an_offline_bundle_counts_as_a_download_of_each_episode(site: Site) -> None:
    path = f"/v1/offline?assets={EP40},{EP90}"
    c40, c90 = Change(site, EP40), Change(site, EP90)
    peek = Listener(site, UA_PODCASTS, "203.0.113.40")
    r = peek.get(path, Range="bytes=0-4095")  # the bundle's index and first headers only
    assert r.status == 206
    whole = Listener(site, UA_PODCASTS, "203.0.113.41")
    r = whole.get(path)
    assert r.status == 200 and r.body[:2] == b"PK"
    for change in (c40, c90):
        now = change.now()
        assert (now["downloads"], now["listeners"]) == (1, 1), now


def _big_download_copy(site: Site, asset: str, size: int) -> None:
    """`asset`: EP90's record and files with a progressive file of `size` bytes (larger
    than every socket buffer between the origin and the client, so that a client who
    stops reading makes the origin's response abort part-way, as a podcast app leaving a
    long episode does). Its bytes are not media: counting only places them in time."""
    import os
    import shutil

    shutil.copytree(site.store / EP90, site.store / asset)
    record_file = site.store / asset / "asset.json"
    rec = json.loads(record_file.read_text())
    (site.store / asset / rec["download_key"]).write_bytes(os.urandom(size))
    record_file.write_text(json.dumps({**rec, "id": asset}))


def _read_then_leave(site: Site, path: str, ua: str, xff: str, keep: int) -> int:
    """GET `path`, read `keep` body bytes, then close the connection; the bytes read."""
    import socket

    sock = socket.create_connection(("127.0.0.1", site.origin.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {ua}\r\n"
                 f"X-Forwarded-For: {xff}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    got = len(body)
    while got < keep:
        chunk = sock.recv(65536)
        assert chunk
        got += len(chunk)
    sock.close()
    return got


def test_a_listener_who_leaves_a_long_download_counts_what_was_delivered(site: Site) -> None:
    big = "ep90big"
    size = 64 * 1024 * 1024
    _big_download_copy(site, big, size)
    path = f"/v1/assets/{big}/download"
    change = Change(site, big)
    # 80% of a 90-second episode: 72 s, past the minute, although the response aborted.
    _read_then_leave(site, path, UA_PODCASTS, "203.0.113.50", int(size * 0.8))
    time.sleep(0.5)  # the origin notices the closed connection at its next write
    now = change.now()
    assert (now["downloads"], now["listeners"]) == (1, 1), now
    assert size * 0.8 <= now["bytes"] < size, now  # what was sent, not the whole file
    # 20%: 18 s (plus what the socket buffers held), no download.
    _read_then_leave(site, path, UA_PODCASTS, "203.0.113.51", int(size * 0.2))
    time.sleep(0.5)
    assert change.now()["downloads"] == 1


def test_head_and_304_are_no_download(site: Site) -> None:
    change = Change(site, EP40)
    client = Listener(site, UA_OVERCAST, "203.0.113.13")
    base = f"/assets/{EP40}/"
    assert client.request("HEAD", f"/v1/assets/{EP40}/download").status == 200
    for uri, _t0, _t1 in segments(site, EP40):
        head = client.request("HEAD", base + uri)
        assert head.status == 200
        etag = head.header("ETag")
        assert etag
        assert client.get(base + uri, **{"If-None-Match": etag}).status == 304
    assert client.received == 0
    assert change.now() == {"downloads": 0, "listeners": 0, "bytes": 0}


# --- CMCD ---------------------------------------------------------------------------------------


def _cmcd(**keys: Any) -> str:
    parts = []
    for k, v in sorted(keys.items()):
        if v is True:
            parts.append(k)
        elif isinstance(v, str) and k in ("sid", "cid"):
            parts.append(f'{k}="{v}"')
        else:
            parts.append(f"{k}={v}")
    return ",".join(parts)


def test_cmcd_in_the_query_and_in_headers_is_recorded(site: Site) -> None:
    before = figures(site, EP40)
    client = Listener(site, UA_CHROME, "203.0.113.20")
    half = duration(site, EP40) / 2
    rendition = segments(site, EP40)[1][0].split("/")[-2]
    # hls.js's form: the query (the first request says startup), then the header form.
    first = "?CMCD=" + urllib.parse.quote(_cmcd(br=80, sid="sess-q", su=True, mtp=2500,
                                                ot="a", sf="h"), safe="")
    client.play(EP40, 0.0, 4.0, query=first)
    later = "?CMCD=" + urllib.parse.quote(_cmcd(br=80, sid="sess-q", mtp=2500, ot="a"),
                                          safe="")
    client.play(EP40, 4.0, half, query=later)
    client.play(EP40, half, 1e9, headers={"CMCD-Request": "mtp=2500",
                                          "CMCD-Session": 'sid="sess-q",sf=h',
                                          "CMCD-Object": "br=80,ot=a"})
    after = figures(site, EP40)
    assert after["sessions"] - before["sessions"] == 1  # one sid over all three forms
    assert after["mtp_kbps_p50"] == 2500
    assert after["startup_ms_p50"] is not None  # first request su, the next one not
    assert after["downloads"] - before["downloads"] == 1
    assert rendition in after["renditions"]
    assert after["renditions"][rendition] > before["renditions"].get(rendition, 0.0)


def test_a_player_on_another_origin_may_send_cmcd_headers(site: Site) -> None:
    r = HttpClient(site.origin.base).request("OPTIONS", f"/assets/{EP40}/master.m3u8", {
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "cmcd-request,cmcd-object,cmcd-status,cmcd-session"})
    assert r.status == 204
    allowed = {v.strip() for v in (r.header("Access-Control-Allow-Headers") or "").split(",")}
    assert {"cmcd-request", "cmcd-object", "cmcd-status", "cmcd-session"} <= allowed


def test_a_cmcd_v2_report_post_gives_startup_and_rebuffering(site: Site) -> None:
    before = figures(site, EP90)
    sid = "sess-v2"
    states = [("s", 1000), ("p", 1750), ("r", 5000), ("p", 6000), ("e", 9000)]
    body = "\n".join(_cmcd(e="ps", sta=s, sid=sid, cid=EP90, ts=t) for s, t in states)
    r = HttpClient(site.origin.base).request("POST", "/v1/cmcd", {
        "Content-Type": "text/cmcd", "User-Agent": UA_CHROME, "X-Forwarded-For": "203.0.113.21",
        "Origin": "https://player.example"})
    assert r.status == 400  # an empty body is no report
    r = _post_cmcd(site, body.encode())
    assert r.status == 204, r.body
    assert r.header("Access-Control-Allow-Origin") == "*"
    after = figures(site, EP90)
    assert after["sessions"] - before["sessions"] == 1
    assert after["startup_ms_p50"] == 750  # the only session of ep90 with a startup
    assert after["rebuffers"] - before["rebuffers"] == 1
    # playing 1.75-5 s and 6-9 s, rebuffering 5-6 s: 1 / 7.25
    assert after["rebuffer_ratio"] == round(1.0 / 7.25, 4)
    # A v1 report sent alone, in the query.
    q = urllib.parse.quote(_cmcd(sid="sess-alone", cid=EP90, bs=True, mtp=900), safe="")
    assert _post_cmcd(site, b"", query=f"?CMCD={q}").status == 204
    assert figures(site, EP90)["sessions"] - before["sessions"] == 2


def _post_cmcd(site: Site, body: bytes, *, query: str = "", ctype: str = "text/cmcd",
               key: str | None = None, xff: str = "203.0.113.21") -> Response:
    headers = {"Content-Type": ctype, "User-Agent": UA_CHROME,
               "X-Forwarded-For": xff, "Origin": "https://player.example",
               "Content-Length": str(len(body))}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    parts = urllib.parse.urlsplit(site.origin.base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        conn.request("POST", "/v1/cmcd" + query, body=body, headers=headers)
        res = conn.getresponse()
        return Response(res.status, res.msg, res.read())
    finally:
        conn.close()


def test_the_collector_preflight_lets_another_origin_post(site: Site) -> None:
    r = HttpClient(site.origin.base).request("OPTIONS", "/v1/cmcd", {
        "Origin": "https://player.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status == 204
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert "POST" in (r.header("Access-Control-Allow-Methods") or "")
    assert "content-type" in (r.header("Access-Control-Allow-Headers") or "").lower()


@pytest.mark.parametrize(("body", "ctype", "status"), [
    (b"x" * (64 * 1024 + 1), "text/cmcd", 413),
    (b"hello world, this is no cmcd", "text/plain", 400),
    (b"\xff\xfe\x00garbage", "text/cmcd", 400),
    (b'{"sid": "x"}', "application/json", 415),
    (b"", "text/cmcd", 400),
    ("\n".join(['e=ps,sta=p,sid="many",cid="ep40"'] * 101).encode(), "text/cmcd", 413),
])
def test_bad_cmcd_bodies_are_4xx(site: Site, body: bytes, ctype: str, status: int) -> None:
    r = _post_cmcd(site, body, ctype=ctype)
    assert r.status == status, r.body
    assert "error" in json.loads(r.body)
    assert r.header("Access-Control-Allow-Origin") == "*"  # a player can read why


def test_the_collector_needs_no_key_but_a_wrong_one_changes_nothing(site: Site) -> None:
    line = _cmcd(e="ps", sta="s", sid="k", cid=EP40, ts=1).encode()
    assert _post_cmcd(site, line).status == 204
    assert _post_cmcd(site, line, key="a-wrong-key").status == 204


def test_the_collector_limits_the_reports_of_an_address(site: Site) -> None:
    body = "\n".join([_cmcd(e="t", sid="busy", cid=EP40, bl=1000)] * 100).encode()
    for _ in range(12):  # 1,200 reports a minute are taken
        assert _post_cmcd(site, body, xff="203.0.113.99").status == 204
    r = _post_cmcd(site, body, xff="203.0.113.99")
    assert r.status == 429 and "error" in json.loads(r.body)
    assert _post_cmcd(site, body, xff="203.0.113.98").status == 204  # another address


# --- privacy ------------------------------------------------------------------------------------


def test_a_private_asset_counts_and_its_token_never_reaches_the_database(site: Site) -> None:
    token = mint(SIGNING_KEYS, expires=int(time.time()) + 3600, asset=SECRET, user="u1")
    change = Change(site, SECRET)
    client = Listener(site, UA_OVERCAST, "203.0.113.30")
    assert client.get(f"/assets/{SECRET}/master.m3u8").status == 403  # no token: refused
    client.received = 0  # a refusal is not recorded
    client.play(SECRET, base=f"/assets/{SECRET}/~{token}/")
    r = client.get(f"/v1/assets/{SECRET}/download?token={token}", Range="bytes=0-99")
    assert r.status == 206
    assert change.now() == {"downloads": 1, "listeners": 1, "bytes": client.received}
    dump = _dump(site.db)
    assert SECRET in dump
    assert token not in dump and token[:20] not in dump
    assert "/~" not in dump
    # Nor does any client address (a salted hash of it is kept).
    assert "203.0.113." not in dump and "2001:db8" not in dump and "198.51.100" not in dump


def _dump(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


# --- reports: the summary, CSV, the key, bad input ----------------------------------------------


def test_the_summary_adds_up_the_assets(site: Site) -> None:
    summary = figures(site)
    per_asset = {a["id"]: a for a in summary["assets"]}
    assert {EP40, EP90} <= set(per_asset)
    for asset in (EP40, EP90):
        one = figures(site, asset)
        assert per_asset[asset]["downloads"] == one["downloads"] >= 1
        assert per_asset[asset]["bytes"] == one["bytes"]
    assert summary["downloads"] == sum(a["downloads"] for a in summary["assets"])
    assert summary["apps"].get("Overcast", 0) >= 1
    assert "Googlebot" not in summary["apps"]
    assert sum(summary["countries"].values()) == summary["downloads"]


def test_csv_export(site: Site) -> None:
    http = HttpClient(site.origin.base)
    d = today()
    r = http.get(f"/v1/analytics/summary?from={d}&to={d}&format=csv", AUTH)
    assert r.status == 200
    assert (r.header("Content-Type") or "").startswith("text/csv")
    assert r.header("Cache-Control") == "no-store"
    assert r.header("Content-Disposition") == \
        f'attachment; filename="sori-summary-{d}-{d}.csv"'
    rows = list(csv.DictReader(io.StringIO(r.body.decode())))
    summary = figures(site)
    assert {row["asset"]: int(row["downloads"]) for row in rows} == \
        {a["id"]: a["downloads"] for a in summary["assets"]}
    # The per-asset CSV through Accept.
    r = http.get(f"/v1/analytics/assets/{EP40}?from={d}&to={d}",
                 {**AUTH, "Accept": "text/csv"})
    assert r.status == 200 and (r.header("Content-Type") or "").startswith("text/csv")
    assert f'filename="sori-asset-{EP40}-{d}-{d}.csv"' in (r.header("Content-Disposition") or "")
    (row,) = list(csv.DictReader(io.StringIO(r.body.decode())))
    assert int(row["downloads"]) == figures(site, EP40)["downloads"]


def test_reports_need_the_key(site: Site) -> None:
    http = HttpClient(site.origin.base)
    for path in ("/v1/analytics/summary", f"/v1/analytics/assets/{EP40}"):
        r = http.get(path)
        assert r.status == 401 and "error" in json.loads(r.body)
        assert r.header("Cache-Control") == "no-store"
        r = http.get(path, {"Authorization": "Bearer not-the-key"})
        assert r.status == 401 and "error" in json.loads(r.body)
        assert http.get(path, AUTH).status == 200


def test_an_asset_never_seen_has_zeros(site: Site) -> None:
    data = figures(site, "never-seen")
    assert (data["downloads"], data["listeners"], data["bytes"]) == (0, 0, 0)


@pytest.mark.parametrize("query", [
    "from=2026-13-01", "from=yesterday", "to=2026-02-30", "from=2026-12-02&to=2026-12-01",
    "from=2000-01-01&to=2026-12-01", "format=xml", "from=2026-1-5",
])
def test_bad_report_queries_are_400(site: Site, query: str) -> None:
    r = HttpClient(site.origin.base).get(f"/v1/analytics/summary?{query}", AUTH)
    assert r.status == 400, (query, r.status)
    assert "error" in json.loads(r.body)


def test_an_invalid_asset_id_is_400(site: Site) -> None:
    r = HttpClient(site.origin.base).get("/v1/analytics/assets/~bad", AUTH)
    assert r.status == 400 and "error" in json.loads(r.body)


def test_metrics_count_the_events(site: Site) -> None:
    figures(site)  # flushes the queue
    body = HttpClient(site.origin.base).get("/metrics").body.decode()
    counts = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^sori_analytics_events_total\{result="(\w+)"\} (\S+)$', body, re.M)}
    assert counts["accepted"] > 100
    assert counts["written"] == counts["accepted"]
    assert counts["dropped"] == 0


# --- analytics off, database down ---------------------------------------------------------------


def test_disabled_analytics_record_nothing_and_answer_404(site: Site, tmp_path: Path) -> None:
    db = tmp_path / "off.sqlite3"
    env = local_env(site.store, SORI_ANALYTICS_ENABLED="false", SORI_ANALYTICS_DATABASE=str(db))
    with serve(env, tmp_path / "serve.log") as origin:
        client = Listener(Site(origin, db, site.store, tmp_path), UA_OVERCAST)
        client.play(EP40)
        http = HttpClient(origin.base)
        for method, path in (("GET", "/v1/analytics/summary"),
                             ("GET", f"/v1/analytics/assets/{EP40}"),
                             ("POST", "/v1/cmcd?CMCD=sid%3D%22x%22")):
            r = http.request(method, path)
            assert r.status == 404, path
            assert "analytics disabled" in json.loads(r.body)["error"]
            assert r.header("Cache-Control") == "no-store"  # it may be enabled later
        assert "sori_analytics_events" not in http.get("/metrics").body.decode()
    assert not db.exists()


def test_a_dead_database_leaves_serving_intact(site: Site, tmp_path: Path) -> None:
    dead = f"postgresql://sori@127.0.0.1:{free_port()}/analytics"  # nothing listens there
    env = local_env(site.store, SORI_ANALYTICS_DATABASE=dead, SORI_ANALYTICS_QUEUE_SIZE="100")
    with serve(env, tmp_path / "serve.log") as origin:
        http = HttpClient(origin.base)
        seg = segments(site, EP40)[1][0]
        t0 = time.monotonic()
        for i in range(1000):  # 1000 clients (identical responses to one would be one hit)
            r = http.get(f"/assets/{EP40}/{seg}", {"User-Agent": f"{UA_OVERCAST} {i}"})
            assert r.status == 200
        assert time.monotonic() - t0 < 30
        time.sleep(2 * hits_module.COALESCE)  # the last hits leave the coalescing window
        body = http.get("/metrics").body.decode()
        counts = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^sori_analytics_events_total\{result="(\w+)"\} (\S+)$', body, re.M)}
        assert counts["written"] == 0
        assert counts["dropped"] > 0
        assert counts["accepted"] + counts["dropped"] == 1000
        r = http.get("/v1/analytics/summary")
        assert r.status == 503 and "error" in json.loads(r.body)
        assert http.get("/healthz").status == 200


# --- the fast lane (in-process: which path answered is visible there) ------------------------


async def test_the_fast_lane_answers_and_records_a_lone_cmcd_query(
        local_store: Store, origin_client: Any, tmp_path: Path) -> None:
    objects = await publish(local_store)
    db = tmp_path / "lane.sqlite3"
    app = create_app(Config(analytics=AnalyticsConfig(database=str(db))), local_store)
    client = await origin_client(app)
    lane = client.server.runner.server.lane
    seg = f"/assets/{ASSET}/{SEGMENT}"
    cmcd = 'br=800,sid="lane-1",mtp=3000'
    query = "?CMCD=" + urllib.parse.quote(cmcd, safe="")
    async with client.get(seg + query) as r:  # a miss: aiohttp answers and caches it
        assert r.status == 200
        assert await r.read() == objects[SEGMENT]
    answered = lane.answered
    async with client.get(seg + query, headers={"User-Agent": UA_CHROME}) as r:
        assert r.status == 200
        assert await r.read() == objects[SEGMENT]
        fast = {k: v for k, v in r.headers.items() if k != "Date"}
    assert lane.answered == answered + 1  # the lane took the CMCD query
    async with client.get(seg + query + "&x=1") as r:  # anything more: aiohttp decides
        assert r.status == 200
        assert await r.read() == objects[SEGMENT]
        # The same answer either way.
        assert {k: v for k, v in r.headers.items() if k != "Date"} == fast
    async with client.get(seg, headers={"CMCD-Session": 'sid="lane-2"',
                                        "CMCD-Request": "mtp=1200"}) as r:
        assert r.status == 200
    assert lane.answered == answered + 2
    # Forwarded by another worker (which records what it answered): not recorded here.
    for extra in ({}, {"Range": "bytes=0-99"}):
        async with client.get(seg, headers={hits_module.PEER_HOP: "1", **extra}) as r:
            assert r.status in (200, 206)
    assert lane.answered == answered + 3
    await app[HITS_KEY].settle(5.0)
    assert await app[RECORDER_KEY].flush(10.0)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT method, status, nbytes, sid, cmcd, rendition FROM hits "
                            "ORDER BY ts").fetchall()
    finally:
        conn.close()
    # The first and third answers are the same response to the same client (origin.observe
    # .hits coalesces them: one row with the bytes of both); the second has its own UA.
    size = len(objects[SEGMENT])
    assert [(m, s, n, sid) for m, s, n, sid, _c, _r in rows] == [
        ("GET", 200, 2 * size, "lane-1"), ("GET", 200, size, "lane-1"),
        ("GET", 200, size, "lane-2")]
    assert all(r[5] == "low" for r in rows)
    assert json.loads(rows[1][4]) == {"br": 800, "sid": "lane-1", "mtp": 3000}
    assert json.loads(rows[2][4]) == {"sid": "lane-2", "mtp": 1200}
    # The asset's facts came from the record origin.media read: no read of their own.
    assert app[HITS_KEY].reads == 0


def _capturing_hits() -> tuple[hits_module.Hits, list[tuple[Any, ...]]]:
    """A Hits whose sink keeps what it is handed, knowing asset "a" (version "x", 40 s)."""
    sent: list[tuple[Any, ...]] = []

    class Sink:
        def submit(self, hit: tuple[Any, ...]) -> None:
            sent.append(hit)

    hits = hits_module.Hits(Sink(), cast(Store, None), ())
    hits.observe("a", {"id": "a", "version": "x", "duration": 40.0, "segment_duration": 2.0})
    return hits, sent


def test_a_hit_tuple_is_hit_fields_in_order() -> None:
    # What crosses to the writer process is a tuple the writer turns into Hit(*values):
    # the origin's tuples must keep Hit's field order, with the AssetInfo last.
    info = AssetInfo("a", "audio", 40.0, 2.0, 0)
    hits, sent = _capturing_hits()
    hits.add("a", "download", "GET", 206, 5, "bytes=0-4", "203.0.113.1", UA_CHROME,
             'sid="s"')
    made = Hit(*sent[0])
    assert (made.asset, made.rel, made.method, made.status, made.nbytes, made.range, made.ip,
            made.ua, made.cmcd, made.source) == (
        "a", "download", "GET", 206, 5, "bytes=0-4", "203.0.113.1", UA_CHROME, 'sid="s"',
        "origin")
    assert made.info == info and abs(made.ts - time.time()) < 5


async def test_no_response_is_lost_when_the_coalescing_table_fills(monkeypatch: Any) -> None:
    # Past COALESCE_MAX distinct responses the table is handed over at once; repeats of a
    # response already handed over start a new hit, never add to one already sent.
    monkeypatch.setattr(hits_module, "COALESCE_MAX", 3)
    hits, sent = _capturing_hits()
    heads = [parse_head(f"GET /assets/a/v/x/low/seg_{i:05d}.m4s HTTP/1.1\r\nHost: h\r\n"
                        f"User-Agent: {UA_CHROME}\r\n\r\n".encode()) for i in range(7)]
    answered = 0
    for head in heads:  # each asked three times in a row, the table filling meanwhile
        assert head is not None
        for _again in range(3):
            hits.lane(head, 100, "203.0.113.1")
            answered += 1
    hits.flush()
    assert sum(h[5] for h in sent) == 100 * answered  # every response's bytes, once
    assert {h[2] for h in sent} == {f"v/x/low/seg_{i:05d}.m4s" for i in range(7)}


def test_a_request_forwarded_by_another_worker_is_not_recorded_twice() -> None:
    # The forwarding worker records what it answered; the header names it (the constant is
    # a copy, origin.live imports origin.app, which imports the hits module).
    assert hits_module.PEER_HOP == peers.HOP
