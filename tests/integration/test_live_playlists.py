"""LL-HLS and LL-DASH serving of a live stream, with real parts: espeak-ng speech pushed in
real time into `sori serve` (its own process, a real socket, a local store) while a player-
like client follows the low rung with blocking reloads (_HLS_msn/_HLS_part of the next part,
the preload hint fetched beside each, as LL-HLS players do). Every reload is checked against
the RFC 8216bis rules (tests/llhls_rules.py); how long each is held after its part lands is
measured against a second waiting client and the part's file in the store. Alongside:
reload errors, plain GETs, Cache-Control by class, the segment in progress sent chunked,
the dynamic MPD against the XSD, ffmpeg reading the live HLS; after the end, the same URLs
give VOD playlists and a static MPD, and nothing fetched live changed a byte. A separate
fast-pushed stream of ~18 s checks delta updates (EXT-X-SKIP) and the 503 after three
target durations.

One real-time stream serves the tests of the first part (module fixture `live`): the
fixture records what the clients saw, each test asserts one aspect of it.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from llhls_rules import (
    MediaPlaylist,
    check_live_media,
    check_vod_media,
    parse_media,
    parse_multivariant,
)
from test_live_support import (
    ENCODINGS,
    TARGET,
    Fetched,
    LiveHttp,
    encode,
    in_process,
    live_config,
    local_env,
    make_speech,
    mpd_type,
    serve,
    validate_mpd,
    wav_pcm,
)

from storage.local import LocalStore

IMMUTABLE = "public, max-age=31536000, immutable"
BLOCKING_CC = f"public, max-age={6 * TARGET}"  # RFC 8216bis appendix B.1
BLOCKING_ERROR_CC = f"public, max-age={4 * TARGET}"
PLAIN_CC = f"public, max-age={TARGET // 2}"
LANDING = 0.15  # seconds: a blocking reload answers within this of its part landing
RUNGS = ("low", "medium", "high")
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass
class Reload:
    """One blocking reload of the follower and the preload-hint GET sent beside it."""

    msn: int
    part: int
    playlist: Fetched
    hint_uri: str
    hint: Fetched
    hint_existed: bool  # the part's file was already in the store when both were sent


@dataclass
class Observed:
    asset_id: str
    base: str
    root: Path  # the local store
    version: str
    seconds: float  # audio pushed
    first: Fetched | None = None  # the follower's first, plain GET
    reloads: list[Reload] = field(default_factory=list)
    plain: list[Fetched] = field(default_factory=list)
    errors: dict[str, Fetched] = field(default_factory=dict)
    ahead: Fetched | None = None  # a blocking reload for last+2
    ahead_msn: int = 0
    master: Fetched | None = None
    mpd: Fetched | None = None
    utc: Fetched | None = None
    segment: Fetched | None = None  # the segment in progress, read chunk by chunk
    segment_uri: str = ""
    segment_chunks: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes)
    ffmpeg: tuple[int, bytes, bytes, float] | None = None  # rc, stdout, stderr, end time
    live_bytes: dict[str, bytes] = field(default_factory=dict)  # URL path -> bytes, live
    ended_at: float = 0.0
    record: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Fetched] = field(default_factory=dict)  # URL path -> GET after sealing

    def rung_dir(self, rung: str = "low") -> str:
        return f"/assets/{self.asset_id}/v/{self.version}/{rung}"

    def store_path(self, rung: str, name: str) -> Path:
        return self.root / self.asset_id / "v" / self.version / rung / name


def max_age(cc: str | None) -> int:
    m = _MAX_AGE.search(cc or "")
    assert m, cc
    return int(m.group(1))


# --- the real-time scenario ------------------------------------------------------------------


async def _follow(http: LiveHttp, obs: Observed, done: asyncio.Event) -> None:
    """A player on the low rung: blocking reload for the next part, its preload hint
    fetched at the same time; every new complete segment fetched on every rung."""
    path = f"{obs.rung_dir()}/index.m3u8"
    obs.first = await http.get(path)
    assert obs.first.status == 200, obs.first.status
    prev = parse_media(obs.first.text)
    seen_segments: set[int] = set()
    fetches: list[asyncio.Task[None]] = []

    async def fetch(url: str) -> None:
        res = await http.get(url)
        assert res.status == 200, (url, res.status)
        obs.live_bytes[url] = res.body

    try:
        await _reloads(http, obs, path, prev, seen_segments, fetches, fetch, done)
    finally:
        await asyncio.gather(*fetches)


async def _reloads(http: LiveHttp, obs: Observed, path: str, prev: MediaPlaylist,
                   seen_segments: set[int], fetches: list[asyncio.Task[None]],
                   fetch: Any, done: asyncio.Event) -> None:
    while True:
        msn, part = prev.progress
        assert prev.preload_hints, prev
        hint_uri = prev.preload_hints[0].uri or ""
        existed = any(obs.store_path(r, hint_uri).exists() for r in RUNGS)
        pl, hint = await asyncio.gather(
            http.get(path, params={"_HLS_msn": str(msn), "_HLS_part": str(part)}, timeout=30),
            http.get(f"{obs.rung_dir()}/{hint_uri}", timeout=30))
        obs.reloads.append(Reload(msn, part, pl, hint_uri, hint, existed))
        if hint.status == 200:
            obs.live_bytes[f"{obs.rung_dir()}/{hint_uri}"] = hint.body
        if pl.status != 200 or "#EXT-X-ENDLIST" in pl.text:
            return
        prev = parse_media(pl.text)
        for seg in prev.segments:
            if seg.msn not in seen_segments and not done.is_set():
                seen_segments.add(seg.msn)
                fetches.extend(asyncio.create_task(fetch(f"{obs.rung_dir(rung)}/{seg.uri}"))
                               for rung in RUNGS)


async def _segment_in_progress(http: LiveHttp, obs: Observed) -> None:
    """GET the next segment before it starts: it comes chunked, part by part."""
    res = await http.get(f"{obs.rung_dir()}/index.m3u8")
    pl = parse_media(res.text)
    obs.segment_uri = f"seg_{pl.next_msn + 1:05d}.m4s"
    url = f"{obs.rung_dir()}/{obs.segment_uri}"
    sent = time.time()
    async with http.session.get(http.url(url)) as resp:
        body = b""
        async for data in resp.content.iter_any():
            obs.segment_chunks.append((time.time(), len(data)))
            body += data
        obs.segment = Fetched(resp.status, resp.headers, body, sent, time.time())
    obs.live_bytes[url] = body


async def _probes(http: LiveHttp, obs: Observed) -> None:
    """Plain GETs, reload errors, the entry manifests, while parts exist."""
    path = f"{obs.rung_dir()}/index.m3u8"
    for _ in range(6):
        await asyncio.sleep(0.45)
        obs.plain.append(await http.get(path))
    obs.errors["part without msn"] = await http.get(path, params={"_HLS_part": "0"})
    for _ in range(3):  # the live edge must not move between the three requests
        before = parse_media((await http.get(path)).text).last_msn
        res = await http.get(path, params={"_HLS_msn": str(before + 3), "_HLS_part": "0"})
        if parse_media((await http.get(path)).text).last_msn == before:
            break
    obs.errors["msn beyond last+2"] = res
    # last+2 is still allowed: held until that segment has its first part
    obs.ahead = await http.get(path, params={"_HLS_msn": str(before + 2), "_HLS_part": "0"})
    obs.ahead_msn = before + 2
    obs.errors["msn not a number"] = await http.get(path, params={"_HLS_msn": "x"})
    obs.master = await http.get(f"/assets/{obs.asset_id}/master.m3u8")
    obs.mpd = await http.get(f"/assets/{obs.asset_id}/manifest.mpd")
    obs.utc = await http.get("/v1/time")


async def _ffmpeg(http: LiveHttp, obs: Observed) -> None:
    # ffmpeg's HLS demuxer ignores parts and gives up on a playlist without a complete
    # segment, so it starts once the first segment is out (about 1.9 s in).
    while not parse_media((await http.get(f"{obs.rung_dir()}/index.m3u8")).text).segments:
        await asyncio.sleep(0.1)
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
        "-i", f"{obs.base}/assets/{obs.asset_id}/master.m3u8", "-t", "3",
        "-ac", "1", "-ar", "8000", "-f", "s16le", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    obs.ffmpeg = (proc.returncode or 0, out, err, time.time())


async def _scenario(base: str, root: Path, speech: Path) -> Observed:
    rate, channels, pcm = wav_pcm(speech)
    assert (rate, channels) == (22050, 1)
    async with aiohttp.ClientSession() as session:
        http = LiveHttp(session, base)
        rec = await http.start("rt", ENCODINGS["pcm_22k"][1], title="Real time")
        obs = Observed("rt", base, root, rec["version"], len(pcm) / (2 * rate))
        done = asyncio.Event()
        tenth = 2 * rate // 10
        first = await http.push("rt", pcm[:tenth], size=tenth)
        follower = asyncio.create_task(_follow(http, obs, done))
        await asyncio.sleep(0.3)
        side = [asyncio.create_task(_segment_in_progress(http, obs)),
                asyncio.create_task(_probes(http, obs)),
                asyncio.create_task(_ffmpeg(http, obs))]
        # the rest in real time, 0.1 s a chunk, a little ahead as an engine is
        await http.push("rt", pcm[tenth:], size=tenth, seq=first, pace=2 * rate, lead=0.2)
        await asyncio.gather(*side)
        done.set()
        obs.ended_at = time.time()
        obs.record = await http.finish("rt")
        await asyncio.wait_for(follower, 30)
        for url in [*obs.live_bytes, "/assets/rt/master.m3u8", "/assets/rt/manifest.mpd",
                    *(f"{obs.rung_dir(r)}/index.m3u8" for r in RUNGS)]:
            obs.after[url] = await http.get(url)
        return obs


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    work = tmp_path_factory.mktemp("live-playlists")
    speech = make_speech(work / "speech.wav", minimum=7.0)
    root = work / "media"
    env = local_env(root, SORI_ORIGIN_UPLOAD_DIR=str(work / "uploads"),
                    SORI_ORIGIN_ACCESS_LOG="false")
    with serve(env, work / "serve.log") as origin:
        yield asyncio.run(_scenario(origin.base, root, speech))


# --- what the follower saw -------------------------------------------------------------------


def test_every_blocking_reload_passes_the_ll_hls_rules(live: Observed) -> None:
    assert live.first is not None
    assert live.first.headers["Cache-Control"] == PLAIN_CC
    prev = check_live_media(live.first.text, target_duration=TARGET, audio=True)
    assert prev.parts, "the first plain GET waits for the first part"
    checked = 0
    for r in live.reloads[:-1]:  # the last one is answered by the sealed playlist
        assert r.playlist.status == 200, (r.msn, r.part, r.playlist.body)
        pl = check_live_media(r.playlist.text, target_duration=TARGET, previous=prev,
                              audio=True)
        assert pl.progress > (r.msn, r.part), (r.msn, r.part, pl.progress)  # holds the part
        assert pl.playlist_type == "EVENT" and pl.media_sequence == 1 and not pl.ended
        # every other rung is reported, at the same part (all rungs cut together)
        reports = {rr.uri: (rr.last_msn, rr.last_part) for rr in pl.rendition_reports}
        assert set(reports) == {f"../{x}/index.m3u8" for x in ("medium", "high")}, reports
        assert set(reports.values()) == {(pl.last_msn, pl.last_part)}, (reports, pl.last_part)
        assert r.playlist.headers["Cache-Control"] == BLOCKING_CC
        prev = pl
        checked += 1
    # about one reload a part: ~9 s of 0.23 s parts
    assert checked >= 0.8 * live.seconds / prev.part_target, checked
    last = live.reloads[-1]
    assert last.playlist.status == 200
    final = check_vod_media(last.playlist.text, target_duration=TARGET)
    for seg in prev.segments:  # the sealed playlist continues what was live
        same = final.segment(seg.msn)
        assert same is not None and same.uri == seg.uri
        assert abs(same.duration - seg.duration) < 1e-6


def test_a_blocking_reload_returns_as_its_part_lands(live: Observed) -> None:
    """Held until the part exists, then answered at once: within LANDING of a second
    client waiting for the same part (its preload hint), and of the part's files being
    written to the store."""
    held = []
    for r in live.reloads[:-1]:
        files = [live.store_path(rung, r.hint_uri) for rung in RUNGS]
        landed = max(os.stat(f).st_mtime for f in files)
        assert r.hint.status == 200, (r.hint_uri, r.hint.status)
        # no later than the second client waiting for the same part (earlier is fine)
        assert r.playlist.done - r.hint.done <= LANDING, (
            r.msn, r.part, r.playlist.done - r.hint.done)
        if not r.hint_existed and r.playlist.sent < landed:
            held.append(r.playlist.done - landed)
            assert r.playlist.done - landed <= LANDING, (r.msn, r.part, r.playlist.done - landed)
            assert r.playlist.done >= landed - 0.01  # not before the part existed
    # most reloads really waited for their part (else this proves nothing)
    assert len(held) >= 0.7 * (len(live.reloads) - 1), (len(held), len(live.reloads))
    held.sort()
    assert held[len(held) // 2] <= 0.05, held  # typically a few milliseconds


def test_a_preload_hint_waits_for_its_part_and_sends_it(live: Observed) -> None:
    waited = 0
    for r in live.reloads[:-1]:
        assert r.hint.status == 200, (r.hint_uri, r.hint.status)
        assert r.hint.headers["Cache-Control"] == IMMUTABLE
        assert r.hint.headers["Content-Type"] in ("video/iso.segment", "audio/mp4")
        assert r.hint.body == live.store_path("low", r.hint_uri).read_bytes()
        if not r.hint_existed and r.hint.held > 0.05:
            waited += 1
            landed = max(os.stat(live.store_path(rung, r.hint_uri)).st_mtime for rung in RUNGS)
            assert landed - 0.01 <= r.hint.done <= landed + 2 * LANDING, (r.hint_uri, landed)
    assert waited >= 0.7 * (len(live.reloads) - 1), waited


def test_reload_errors_and_plain_gets(live: Observed) -> None:
    for name, res in live.errors.items():
        assert res.status == 400, (name, res.status, res.body)
        assert res.json()["error"], name
        assert max_age(res.headers["Cache-Control"]) <= 4 * TARGET, (name, res.headers)
    for name in ("part without msn", "msn beyond last+2"):  # errors of blocking requests
        assert live.errors[name].headers["Cache-Control"] == BLOCKING_ERROR_CC, name
    assert live.ahead is not None and live.ahead.status == 200, live.ahead
    ahead = check_live_media(live.ahead.text, target_duration=TARGET, audio=True)
    assert ahead.progress > (live.ahead_msn, 0), (live.ahead_msn, ahead.progress)
    assert live.ahead.held > 0.5, live.ahead.held  # it waited for a segment to start
    # a plain GET never blocks: answered at once, with what is published
    assert len(live.plain) == 6
    for res in live.plain:
        assert res.status == 200
        assert res.headers["Cache-Control"] == PLAIN_CC
        assert res.held < 0.1, res.held
        check_live_media(res.text, target_duration=TARGET, audio=True)


def test_cache_control_by_class(live: Observed) -> None:
    assert live.master is not None and live.master.status == 200
    assert max_age(live.master.headers["Cache-Control"]) <= TARGET // 2  # short while live
    mv = parse_multivariant(live.master.text)
    assert [v.uri.split("/")[-2] for v in mv.variants] == list(RUNGS)
    assert live.segment is not None and live.segment.headers["Cache-Control"] == IMMUTABLE
    for url, res in live.after.items():
        if url.endswith(".m4s"):
            assert res.headers["Cache-Control"] == IMMUTABLE, url
    assert live.mpd is not None and max_age(live.mpd.headers["Cache-Control"]) <= TARGET // 2


def test_the_segment_in_progress_is_sent_chunked_as_its_parts_land(live: Observed) -> None:
    res = live.segment
    assert res is not None and res.status == 200, res
    assert res.headers.get("Transfer-Encoding") == "chunked"
    number = int(live.segment_uri[4:9])
    parts = []
    k = 0
    while (uri := f"{live.rung_dir()}/seg_{number:05d}.{k}.m4s") in live.live_bytes:
        parts.append(live.live_bytes[uri])
        k += 1
    assert k >= 2, live.segment_uri
    assert res.body == b"".join(parts)  # the concatenation of its parts
    assert res.body == live.store_path("low", live.segment_uri).read_bytes()  # the segment
    assert live.after[f"{live.rung_dir()}/{live.segment_uri}"].body == res.body
    # it came as the parts landed, over most of a segment's duration, not at once
    times = [t for t, _n in live.segment_chunks]
    assert times[-1] - times[0] >= 0.6 * (k - 1) * 0.232, (times[-1] - times[0], k)


def test_the_dynamic_mpd_validates(live: Observed) -> None:
    assert live.mpd is not None and live.mpd.status == 200
    assert live.mpd.headers["Content-Type"].startswith("application/dash+xml")
    mpd = validate_mpd(live.mpd.body)
    assert mpd_type(mpd) == "dynamic"
    ns = "{urn:mpeg:dash:schema:mpd:2011}"
    utc = mpd.find(f"{ns}UTCTiming")
    assert utc is not None and utc.get("value", "").endswith("/v1/time")
    templates = list(mpd.iter(f"{ns}SegmentTemplate"))
    assert len(templates) == 3
    assert all(t.get("availabilityTimeComplete") == "false" for t in templates)
    assert live.utc is not None and live.utc.status == 200
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", live.utc.text)


def test_ffmpeg_reads_the_live_hls(live: Observed) -> None:
    assert live.ffmpeg is not None
    rc, out, err, finished = live.ffmpeg
    assert rc == 0, err.decode(errors="replace")[-2000:]
    assert len(out) >= 2.9 * 8000 * 2, len(out)  # three seconds decoded
    assert finished < live.ended_at  # while the stream was live


def test_sealed_at_the_same_urls_and_nothing_fetched_live_changed(live: Observed) -> None:
    assert live.record["state"] == "ready"
    for rung in RUNGS:
        res = live.after[f"{live.rung_dir(rung)}/index.m3u8"]
        assert res.status == 200
        check_vod_media(res.text, target_duration=TARGET)
    mpd = live.after["/assets/rt/manifest.mpd"]
    assert mpd_type(validate_mpd(mpd.body)) == "static"
    master = parse_multivariant(live.after["/assets/rt/master.m3u8"].text)
    assert all(v.average_bandwidth for v in master.variants)  # measured at sealing
    media = {u: b for u, b in live.live_bytes.items() if u.endswith(".m4s")}
    assert len(media) >= 40, len(media)  # every part of the low rung, and the segments
    for url, body in media.items():
        assert live.after[url].status == 200, url
        assert live.after[url].body == body, url


# --- delta updates and the blocking limit, on a fast-pushed stream ------------------------


async def test_delta_update_skips_old_segments_and_a_long_block_gives_503(
        tmp_path: Path, origin_client: Any) -> None:
    speech = make_speech(tmp_path / "speech.wav", minimum=7.0)
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    await http.start("long", ENCODINGS["pcm_22k"][1])
    data = encode(speech, "pcm_22k") * 2  # ~18 s, pushed in about a second
    await http.push("long", data, size=64 * 1024)
    path = (await http.media_playlists("long"))["low"]
    seconds = len(data) / (2 * 22050)
    deadline = time.monotonic() + 30
    while True:  # the encoder catches up with the pushed audio
        full_res = await http.get(path)
        full = check_live_media(full_res.text, target_duration=TARGET, audio=True)
        if full.listed_duration >= seconds - 0.5:
            break
        assert time.monotonic() < deadline, full.listed_duration
        await asyncio.sleep(0.2)
    assert full.skipped_segments is None and full.listed_duration > 6 * TARGET
    # a blocking reload for the newest part (there already) asking for a delta update
    res = await http.get(path, params={"_HLS_msn": str(full.last_msn),
                                       "_HLS_part": str(full.last_part), "_HLS_skip": "YES"})
    assert res.status == 200 and res.held < 1.0
    assert res.headers["Cache-Control"] == BLOCKING_CC
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in res.text
    delta: MediaPlaylist = check_live_media(res.text, target_duration=TARGET, previous=full,
                                            audio=True)
    assert delta.skipped_segments and delta.skipped_segments >= 3, delta.skipped_segments
    assert delta.listed_duration >= 6 * TARGET  # what stays covers CAN-SKIP-UNTIL
    assert delta.progress == full.progress
    assert [s.uri for s in delta.segments] == [s.uri for s in full.segments][-len(delta.segments):]
    # a plain GET with _HLS_skip is a delta update too
    plain = await http.get(path, params={"_HLS_skip": "YES"})
    assert plain.status == 200 and "#EXT-X-SKIP" in plain.text
    check_live_media(plain.text, target_duration=TARGET, previous=full, audio=True)
    # The producer is ~15 s ahead of real time: the next part will not exist for longer than
    # three target durations, so a blocking reload for it is answered 503.
    res = await http.get(path, params={"_HLS_msn": str(full.next_msn),
                                       "_HLS_part": str(len(full.trailing_parts))})
    assert res.status == 503, (res.status, res.body)
    assert 3 * TARGET - 0.2 <= res.held <= 3 * TARGET + 1.0, res.held
    assert "no-store" in res.headers["Cache-Control"] or max_age(
        res.headers["Cache-Control"]) <= 4 * TARGET
    await http.finish("long")
