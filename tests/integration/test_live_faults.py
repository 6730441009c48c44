"""Bad input and faults on the live ingest, with real parts: seq duplicates and gaps, ids and
formats that are refused, a declared format the bytes contradict, garbage, an empty stream,
an over-long chunk, the API key; a producer that disconnects mid-chunk or closes its
WebSocket without ending (sealed after the producer timeout, `sori serve` with
SORI_LIVE_PRODUCER_TIMEOUT=2); the origin killed with SIGKILL mid-stream and started again
(sealed on start, nothing published lost); a producer far slower than real time (silence
keeps the parts coming, the speech goes on after each pause). Each gets a clear 4xx or a
clean seal: never a 500, never a half-published asset."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from audio_checks import check_packaged_audio
from llhls_rules import check_live_media, check_vod_media, parse_media
from test_live_support import (
    ENCODINGS,
    TARGET,
    LiveHttp,
    check_sealed,
    decode_pcm,
    encode,
    free_port,
    in_process,
    live_config,
    local_env,
    make_speech,
    serve,
    validate_mpd,
    wav_pcm,
)

from packager.pipeline import package
from settings import PackagerConfig
from storage.local import LocalStore

PCM = ENCODINGS["pcm_22k"][1]
SECOND = 2 * 22050  # bytes of one second of 22.05 kHz mono s16le
TIMEOUT = 2.0  # [live] producer_timeout of the `sori serve` of this module


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 9 s of espeak-ng speech (22.05 kHz mono)."""
    return make_speech(tmp_path_factory.mktemp("live-faults") / "speech.wav", minimum=7.0)


@pytest.fixture(scope="module")
def pcm(speech: Path) -> bytes:
    rate, channels, data = wav_pcm(speech)
    assert (rate, channels) == (22050, 1)
    return data


async def local_origin(origin_client: Any, tmp_path: Path, **live: Any
                       ) -> tuple[LiveHttp, LocalStore]:
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path, **live))
    return LiveHttp(client.session, base), store


async def assert_gone(http: LiveHttp, store: LocalStore, asset_id: str) -> None:
    """Nothing of the asset is left: no record over HTTP, no object in the store."""
    status, _rec = await http.record(asset_id)
    assert status == 404, (asset_id, status, _rec)
    assert await store.list(f"{asset_id}/") == []
    res = await http.get("/v1/assets")
    assert asset_id not in [a["id"] for a in res.json()["assets"]]


# --- seq ---------------------------------------------------------------------------------


async def test_a_repeated_seq_is_acknowledged_and_ignored_and_a_gap_refused(
        pcm: bytes, tmp_path: Path, origin_client: Any) -> None:
    http, store = await local_origin(origin_client, tmp_path)
    await http.start("seq", PCM)
    chunks = [pcm[at:at + SECOND] for at in range(0, len(pcm), SECOND)]
    assert (await http.chunk("seq", 0, chunks[0])).status == 200
    assert (await http.chunk("seq", 1, chunks[1])).status == 200
    for again in (1, 0):  # a retry of the last chunk, and of an older one: one second each
        res = await http.chunk("seq", again, chunks[again])
        assert res.status == 200, res.body
        ack = res.json()
        assert ack["seq"] == again and ack["duplicate"] is True and ack["expected"] == 2
    res = await http.chunk("seq", 3, chunks[3])  # seq 2 is missing
    assert res.status == 409, res.body
    assert res.json()["expected"] == 2 and res.json()["error"]
    for seq in range(2, len(chunks)):
        res = await http.chunk("seq", seq, chunks[seq])
        assert res.status == 200 and res.json()["duplicate"] is False, (seq, res.body)
    await http.finish("seq")
    # exactly the audio sent once: a duplicate taken twice would add a second
    await check_sealed(http, "seq", len(pcm) / SECOND, store=store)
    res = await http.chunk("seq", len(chunks), chunks[0])  # the stream has ended
    assert res.status == 409, (res.status, res.body)
    assert res.json()["error"]


# --- refused at creation -----------------------------------------------------------------


async def test_an_id_taken_by_a_packaged_asset_is_refused(speech: Path, pcm: bytes,
                                                          tmp_path: Path,
                                                          origin_client: Any) -> None:
    http, store = await local_origin(origin_client, tmp_path)
    short = tmp_path / "short.wav"
    short.write_bytes(speech.read_bytes())
    cfg = PackagerConfig(segment_duration=2.0, loudness=False)
    await package(short, store, cfg, asset_id="vod", title="A packaged asset")
    before = {k: await store.get(k) for k in await store.list("vod/")}
    res = await http.create("vod", PCM)
    assert res.status == 409, (res.status, res.body)
    assert res.json()["error"]
    assert (await http.chunk("vod", 0, pcm[:SECOND])).status in (404, 409)
    assert {k: await store.get(k) for k in await store.list("vod/")} == before
    status, rec = await http.record("vod")
    assert status == 200 and rec["state"] == "ready" and rec["title"] == "A packaged asset"
    # and a live id cannot be created twice
    await http.start("twice", PCM)
    res = await http.create("twice", PCM)
    assert res.status == 409, (res.status, res.body)


BAD_IDS: list[Any] = ["-starts-with-dash", "has/slash", "..", "../up", "sp ace", "x" * 129,
                      "tab\there", "é", 5, ["list"]]
BAD_FORMATS: list[Any] = [
    "pcm_s16le", [], 24000,
    {"codec": "flac"},
    {"codec": "pcm_s16le"},
    {"codec": "pcm_s16le", "sample_rate": 24000},
    {"codec": "pcm_s16le", "channels": 1},
    {"codec": "pcm_s16le", "sample_rate": 12345, "channels": 1},
    {"codec": "pcm_s16le", "sample_rate": 24000, "channels": 3},
    {"codec": "pcm_s16le", "sample_rate": "24000", "channels": 1},
    {"codec": "pcm_s16le", "sample_rate": True, "channels": 1},
    {"codec": "pcm_s16le", "sample_rate": 24000.0, "channels": 1},
    {"codec": "mp3", "bitrate": 128000},
]


async def test_invalid_ids_and_formats_are_refused(tmp_path: Path, origin_client: Any) -> None:
    http, store = await local_origin(origin_client, tmp_path)
    for bad in BAD_IDS:
        res = await http.request("POST", "/v1/live", json_body={"id": bad, "format": PCM})
        assert res.status == 400, (bad, res.status, res.body)
        assert res.json()["error"], bad
    for fmt in BAD_FORMATS:
        res = await http.create("fmt", fmt)
        assert res.status == 400, (fmt, res.status, res.body)
        assert res.json()["error"], fmt
    for body in (b"not json", b"[1, 2]", b'"id"', b'{"id": "x", "colour": "red"}'):
        res = await http.request("POST", "/v1/live", data=body,
                                 headers={"Content-Type": "application/json"})
        assert res.status == 400, (body, res.status, res.body)
    assert (await http.get("/v1/assets")).json()["assets"] == []
    assert await store.list("") == []
    # chunk requests that make no sense
    await http.start("ok", PCM)
    for query in ({}, {"seq": "-1"}, {"seq": "x"}, {"seq": "1.5"}):
        res = await http.request("POST", "/v1/live/ok/chunks", data=b"\0\0", params=query)
        assert res.status == 400, (query, res.status, res.body)
    assert (await http.chunk("nope", 0, b"\0\0")).status == 404
    assert (await http.chunk("bad id", 0, b"\0\0")).status in (400, 404)
    assert (await http.end("nope")).status == 404


# --- bytes that are not what was declared --------------------------------------------------


@pytest.mark.parametrize("kind", ["wav_stream", "mp3", "opus"])
async def test_raw_pcm_declared_but_a_container_sent_is_refused(kind: str, speech: Path,
                                                                tmp_path: Path,
                                                                origin_client: Any) -> None:
    http, store = await local_origin(origin_client, tmp_path)
    data = encode(speech, kind)
    await http.start("wrong", PCM)
    res = await http.chunk("wrong", 0, data[:16384])
    assert res.status == 400, (res.status, res.body)
    assert "pcm" in res.json()["error"].lower() or "PCM" in res.json()["error"]
    res = await http.end("wrong")
    assert res.status in (400, 409), (res.status, res.body)
    await assert_gone(http, store, "wrong")


async def test_garbage_declared_as_mp3_is_refused_never_a_500(tmp_path: Path,
                                                              origin_client: Any) -> None:
    """A TTS API's JSON error forwarded as audio: nothing decodes, a 4xx says so."""
    http, store = await local_origin(origin_client, tmp_path)
    garbage = json.dumps({"error": {"message": "quota exceeded", "type": "rate_limit"}})
    data = (garbage.encode() + b"\n") * 400
    await http.start("junk", {"codec": "mp3"})
    statuses = []
    for seq, at in enumerate(range(0, len(data), 4096)):
        res = await http.chunk("junk", seq, data[at:at + 4096])
        statuses.append(res.status)
        assert res.status < 500, res.body
        if res.status != 200:
            break
    res = await http.end("junk")
    statuses.append(res.status)
    assert res.status < 500, res.body
    assert any(400 <= s < 500 for s in statuses), statuses
    assert res.status != 200, res.body
    await assert_gone(http, store, "junk")


async def test_garbage_inside_an_mp3_stream_is_skipped(speech: Path, tmp_path: Path,
                                                       origin_client: Any) -> None:
    http, store = await local_origin(origin_client, tmp_path)
    data = encode(speech, "mp3")
    half = len(data) // 2
    stream = data[:half] + b"this is not audio. " * 1000 + data[half:]
    await http.start("resync", {"codec": "mp3"})
    for seq, at in enumerate(range(0, len(stream), 8192)):
        res = await http.chunk("resync", seq, stream[at:at + 8192])
        assert res.status == 200, (seq, res.status, res.body)
    await http.finish("resync")
    _rate, _ch, pcm = wav_pcm(speech)
    rec = await check_sealed(http, "resync", len(pcm) / SECOND, store=store, tolerance=0.5)
    assert rec["state"] == "ready"


async def test_an_empty_stream_ended_at_once_leaves_nothing(tmp_path: Path,
                                                            origin_client: Any) -> None:
    http, store = await local_origin(origin_client, tmp_path)
    for fmt in (PCM, {"codec": "auto"}, {"codec": "mp3"}):
        await http.start("empty", fmt)
        res = await http.end("empty")
        assert res.status == 400, (fmt, res.status, res.body)
        assert res.json()["error"]
        await assert_gone(http, store, "empty")
    # empty chunks do not count as audio either
    await http.start("empty", PCM)
    assert (await http.chunk("empty", 0, b"")).status == 200
    assert (await http.end("empty")).status == 400
    await assert_gone(http, store, "empty")


async def test_a_chunk_over_max_chunk_bytes_is_413(pcm: bytes, tmp_path: Path,
                                                   origin_client: Any) -> None:
    limit = 64 * 1024
    http, _store = await local_origin(origin_client, tmp_path, max_chunk_bytes=limit)
    await http.start("big", PCM)
    res = await http.chunk("big", 0, pcm[:limit + 2])
    assert res.status == 413, (res.status, res.body)
    assert res.json()["error"]

    async def body() -> Any:  # chunked transfer: no Content-Length to refuse it early
        for at in range(0, limit + 2, 8192):
            yield pcm[at:min(at + 8192, limit + 2)]

    res = await http.request("POST", "/v1/live/big/chunks", data=body(), params={"seq": "0"})
    assert res.status == 413, (res.status, res.body)
    res = await http.chunk("big", 0, pcm[:limit])  # at the limit: taken, as seq 0
    assert res.status == 200 and res.json()["expected"] == 1, res.body


async def test_write_endpoints_need_the_api_key(pcm: bytes, tmp_path: Path,
                                                origin_client: Any) -> None:
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store,
                                    live_config(tmp_path, api_keys=("live-key",)))
    anon = LiveHttp(client.session, base)
    keyed = LiveHttp(client.session, base, key="live-key")
    wrong = LiveHttp(client.session, base, key="not-the-key")
    for who in (anon, wrong):
        assert (await who.create("keyed", PCM)).status == 401
    await keyed.start("keyed", PCM)
    for who in (anon, wrong):
        assert (await who.chunk("keyed", 0, pcm[:SECOND])).status == 401
        res = await who.request("PUT", "/v1/live/keyed/stream", data=pcm[:SECOND])
        assert res.status == 401
        assert (await who.end("keyed")).status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with client.session.ws_connect(f"{base}/v1/live/keyed/ws",
                                                 headers=who.auth()):
                pass
        assert refused.value.status == 401
    # nothing got in: the stream has no audio yet
    res = await keyed.chunk("keyed", 0, pcm[:SECOND])
    assert res.status == 200 and res.json()["expected"] == 1 and not res.json()["duplicate"]
    async with client.session.ws_connect(f"{base}/v1/live/keyed/ws",
                                         headers=keyed.auth()) as ws:
        await ws.send_bytes(pcm[SECOND:3 * SECOND])
        await ws.send_str(json.dumps({"end": True}))
        msg = await ws.receive_json(timeout=60)
    assert msg["asset"]["state"] == "ready"
    # reading needs no key
    assert (await anon.get("/assets/keyed/master.m3u8")).status == 200
    await check_sealed(anon, "keyed", 3.0, store=store)


# --- a producer that goes away ----------------------------------------------------------------


@pytest.fixture(scope="module")
def short_timeout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`sori serve` (its own process) sealing a stream after 2 s without audio."""
    work = tmp_path_factory.mktemp("live-timeout")
    env = local_env(work / "media", SORI_ORIGIN_UPLOAD_DIR=str(work / "uploads"),
                    SORI_LIVE_PRODUCER_TIMEOUT=str(TIMEOUT))
    with serve(env, work / "serve.log") as origin:
        yield origin.base, work / "media"


async def _raw_chunk(base: str, asset_id: str, seq: int, declared: int,
                     pieces: list[bytes], *, hang_up: bool) -> dict[str, Any] | None:
    """POST a chunk over a bare socket: its head promising `declared` bytes, then the body
    in `pieces` 0.3 s apart; then hang up (returns None), or read the answer (its JSON)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write((f"POST /v1/live/{asset_id}/chunks?seq={seq} HTTP/1.1\r\n"
                  f"Host: {host}:{port}\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: {declared}\r\nConnection: close\r\n\r\n").encode())
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.3)
    try:
        if hang_up:
            return None
        raw = await asyncio.wait_for(reader.read(), 30)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), raw
        answer: dict[str, Any] = json.loads(body)
        return answer
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_producer_that_disconnects_mid_chunk(short_timeout: tuple[str, Path],
                                                     pcm: bytes) -> None:
    base, root = short_timeout
    sec = [pcm[i * SECOND:(i + 1) * SECOND] for i in range(4)]
    async with aiohttp.ClientSession() as session:
        http = LiveHttp(session, base)
        await http.start("cut", PCM)
        await http.push("cut", sec[0] + sec[1], size=SECOND)
        # seq 2 arrives slowly, in two halves: it is taken whole
        half = SECOND // 2
        ack = await _raw_chunk(base, "cut", 2, SECOND, [sec[2][:half], sec[2][half:]],
                               hang_up=False)
        assert ack is not None and ack["expected"] == 3 and ack["duplicate"] is False
        assert ack["media_seconds"] == 3.0, ack
        # seq 3 starts, a quarter of it arrives, the connection drops
        await _raw_chunk(base, "cut", 3, SECOND, [sec[3][:SECOND // 4]], hang_up=True)
        status, rec = await http.record("cut")
        assert status == 200 and rec["state"] == "live", rec
        # the producer comes back and sends seq 3 again, whole: nothing of it was taken
        res = await http.chunk("cut", 3, sec[3])
        assert res.status == 200, res.body
        assert res.json()["duplicate"] is False and res.json()["expected"] == 4, res.body
        assert res.json()["media_seconds"] == 4.0, res.body
        last_audio = time.monotonic()
        # then it goes away for good: sealed once the producer timeout has passed
        rec = await http.wait_ready("cut", TIMEOUT + 15)
        assert time.monotonic() - last_audio >= TIMEOUT - 0.3
        assert rec["live"]["reason"] == "timeout", rec["live"]
        # its four seconds, then silence up to the timeout (the parts kept coming)
        assert 4.0 <= rec["duration"] <= 4.0 + TIMEOUT + 1.5, rec["duration"]
        await check_sealed(http, "cut", rec["duration"] - 0.3, store=LocalStore(root),
                           tolerance=0.6)
        heard = np.frombuffer(await asyncio.to_thread(
            decode_pcm, f"{base}/assets/cut/master.m3u8"), dtype="<i2")
    sent = np.frombuffer(b"".join(sec), dtype="<i2").astype(float)
    for second in (2, 3):  # the slow chunk and the one sent twice hold their speech
        got = heard[second * 8000:(second + 1) * 8000].astype(float)
        want = sent[second * 22050:(second + 1) * 22050]
        assert np.sqrt(np.mean(got ** 2)) > 100 and np.sqrt(np.mean(want ** 2)) > 100, second


async def test_a_websocket_closed_without_end_is_sealed_after_the_timeout(
        short_timeout: tuple[str, Path], pcm: bytes) -> None:
    base, root = short_timeout
    async with aiohttp.ClientSession() as session:
        http = LiveHttp(session, base)
        await http.start("ws-gone", PCM)
        async with session.ws_connect(f"{base}/v1/live/ws-gone/ws") as ws:
            for at in range(0, 2 * SECOND, 4410):
                await ws.send_bytes(pcm[at:at + 4410])
            await asyncio.sleep(0.2)
        closed = time.monotonic()
        status, rec = await http.record("ws-gone")
        assert status == 200 and rec["state"] == "live"
        rec = await http.wait_ready("ws-gone", TIMEOUT + 15)
        assert time.monotonic() - closed >= TIMEOUT - 0.5
        assert rec["live"]["reason"] == "timeout"
        assert 2.0 <= rec["duration"] <= 2.0 + TIMEOUT + 1.5, rec["duration"]
        await check_sealed(http, "ws-gone", rec["duration"] - 0.3, store=LocalStore(root),
                           tolerance=0.6)


# --- the origin killed mid-stream ---------------------------------------------------------------


async def test_the_origin_killed_mid_stream_seals_it_on_start(tmp_path: Path, pcm: bytes) -> None:
    root = tmp_path / "media"
    env = local_env(root, SORI_ORIGIN_UPLOAD_DIR=str(tmp_path / "uploads"))
    port = free_port()
    fetched: dict[str, bytes] = {}
    with serve(env, tmp_path / "first.log", port=port) as origin:
        async with aiohttp.ClientSession() as session:
            http = LiveHttp(session, origin.base)
            rec = await http.start("killed", PCM)
            low = f"/assets/killed/v/{rec['version']}/low"
            pusher = asyncio.create_task(
                http.push("killed", pcm, size=4410, pace=SECOND, lead=0.2))
            # follow to segment 3 and fetch everything published on the way
            res = await http.get(f"{low}/index.m3u8",
                                 params={"_HLS_msn": "3", "_HLS_part": "0"}, timeout=30)
            assert res.status == 200
            pl = check_live_media(res.text, target_duration=TARGET, audio=True)
            for uri in [p.uri for p in pl.parts] + [s.uri for s in pl.segments]:
                got = await http.get(f"{low}/{uri}")
                assert got.status == 200
                fetched[uri] = got.body
            # kill it the moment a new segment has its first part: the segment in progress
            # is then one part long
            res = await http.get(f"{low}/index.m3u8",
                                 params={"_HLS_msn": str(pl.next_msn + 1), "_HLS_part": "0"},
                                 timeout=30)
            origin.proc.send_signal(signal.SIGKILL)
            origin.proc.wait()
            pusher.cancel()
            await asyncio.gather(pusher, return_exceptions=True)
    last = parse_media(res.text)
    published = last.listed_duration
    assert last.trailing_parts, "killed with a segment in progress"
    with serve(env, tmp_path / "second.log") as again:
        async with aiohttp.ClientSession() as session:
            http = LiveHttp(session, again.base)
            rec = await http.wait_ready("killed", 30)
            assert rec["live"]["reason"] == "recovered", rec["live"]
            # nothing published before the kill is lost
            assert rec["duration"] >= published - 0.01, (rec["duration"], published)
            for rung_path in (await http.media_playlists("killed")).values():
                res = await http.get(rung_path)
                assert res.status == 200
                assert "#EXT-X-ENDLIST" in res.text
                check_vod_media(res.text, target_duration=TARGET)
            for uri, body in fetched.items():
                got = await http.get(f"{low}/{uri}")
                assert got.status == 200 and got.body == body, uri
            for p in last.parts:  # the last parts seen live are still there
                assert (await http.get(f"{low}/{p.uri}")).status == 200, p.uri
            mpd = await http.get("/assets/killed/manifest.mpd")
            assert validate_mpd(mpd.body).get("type", "static") == "static"
            await check_packaged_audio(LocalStore(root), "killed", rec["segment_duration"])
            heard = await asyncio.to_thread(decode_pcm, f"{again.base}/assets/killed/master.m3u8")
            assert abs(len(heard) / 16000 - rec["duration"]) < 0.1, (len(heard), rec)


# --- a producer far slower than real time ------------------------------------------------------


SENTENCES = ("The first sentence arrives at once.", "Then the model thinks for a while.",
             "And the last words come after another pause.")
PAUSE = 2.0
SILENCE_AFTER = 0.15  # [live] silence_after (the default)


async def test_a_slow_producer_gets_silence_and_the_parts_keep_their_cadence(
        tmp_path: Path) -> None:
    bursts = []
    for i, text in enumerate(SENTENCES):
        rate, _ch, data = wav_pcm(make_speech(tmp_path / f"s{i}.wav", text))
        assert rate == 22050
        bursts.append(data)
    env = local_env(tmp_path / "media", SORI_ORIGIN_UPLOAD_DIR=str(tmp_path / "uploads"))
    seen: dict[str, tuple[float, float]] = {}  # part URI -> (first seen, its media end)
    with serve(env, tmp_path / "serve.log") as origin:
        async with aiohttp.ClientSession() as session:
            http = LiveHttp(session, origin.base)
            rec = await http.start("slow", PCM)
            path = f"/assets/slow/v/{rec['version']}/low/index.m3u8"
            stop = asyncio.Event()

            async def follow() -> None:
                prev = None
                res = await http.get(path)
                while True:
                    pl = check_live_media(res.text, target_duration=TARGET, previous=prev,
                                          audio=True)
                    offset = 0.0  # media time at the start of each segment
                    for s in pl.segments:
                        t = offset
                        for p in s.parts:
                            t += p.duration
                            seen.setdefault(p.uri, (res.done, t))
                        offset += s.duration
                    t = offset
                    for p in pl.trailing_parts:
                        t += p.duration
                        seen.setdefault(p.uri, (res.done, t))
                    if stop.is_set():
                        return
                    msn, part = pl.progress
                    prev = pl
                    res = await http.get(path, params={"_HLS_msn": str(msn),
                                                       "_HLS_part": str(part)}, timeout=30)
                    assert res.status == 200, res.body

            seq = 0
            follower = asyncio.create_task(follow())  # its first GET waits for a part
            for i, burst in enumerate(bursts):
                seq = await http.push("slow", burst, size=8820, seq=seq)  # all at once
                if i < len(bursts) - 1:
                    await asyncio.sleep(len(burst) / SECOND + PAUSE)
            await asyncio.sleep(len(bursts[-1]) / SECOND + 0.3)
            stop.set()
            await asyncio.wait_for(follower, 30)
            rec = await http.finish("slow")
            start = rec["live"]["start"]  # the wall clock of media time 0
            heard = np.frombuffer(await asyncio.to_thread(
                decode_pcm, f"{origin.base}/v1/assets/slow/download"), dtype="<i2")
    # silence was inserted for the two pauses, and the record says so
    assert rec["silence_inserted"] >= 2 * PAUSE * 0.8, rec["silence_inserted"]
    speech = sum(len(b) for b in bursts) / SECOND
    assert rec["duration"] >= speech + 2 * PAUSE * 0.8
    # cadence: while the producer is behind, parts follow each other within PART-TARGET +
    # 150 ms; and no part comes later than that after real time reached its end, beyond the
    # [live] silence_after the producer is allowed to lag before silence is inserted
    part_target = float(rec["live"]["part_target"])
    parts = sorted(seen.values(), key=lambda v: v[1])
    assert len(parts) >= (rec["duration"] - 1) / part_target, len(parts)
    late = [(pub - (start + end), end) for pub, end in parts]
    assert max(lat for lat, _e in late) <= SILENCE_AFTER + part_target + 0.15, late
    paced = 0
    for (pub0, end0), (pub1, _end1) in zip(parts, parts[1:], strict=False):
        if pub0 >= start + end0:  # the previous part was due when it came: the producer lags
            paced += 1
            assert pub1 - pub0 <= part_target + 0.15, (end0, pub1 - pub0)
    assert paced >= 2 * PAUSE / part_target * 0.7, paced  # the pauses were followed
    # the speech goes on after each pause: three stretches of speech, two long silences
    window = 400  # 50 ms at 8 kHz
    loud = [float(np.sqrt(np.mean(heard[i:i + window].astype(float) ** 2))) > 150
            for i in range(0, len(heard) - window, window)]
    stretches = []
    run_start = None
    quiet = 0
    for i, on in enumerate(loud):
        if on:
            if run_start is None:
                run_start = i
            quiet = 0
        elif run_start is not None:
            quiet += 1
            if quiet * 0.05 >= 1.0:  # a second of silence ends a stretch of speech
                stretches.append((run_start * 0.05, (i - quiet + 1) * 0.05))
                run_start, quiet = None, 0
    if run_start is not None:
        stretches.append((run_start * 0.05, (len(loud) - quiet) * 0.05))
    assert len(stretches) == 3, stretches
    gaps = [b[0] - a[1] for a, b in zip(stretches, stretches[1:], strict=False)]
    assert all(PAUSE * 0.75 <= g <= PAUSE + 1.5 for g in gaps), (gaps, stretches)
    assert rec["duration"] - stretches[-1][1] <= 2.0, (rec["duration"], stretches)
