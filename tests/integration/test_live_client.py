"""The live ingest's clients: `sori live` (a subprocess, as a user runs it) and
sori.client.LiveClient, pushing espeak-ng speech into a real `sori serve`; a retry across a
connection cut by a TCP proxy in front of the origin; and the client's protocol handling
(retries, gaps, the policy on leaving its block) against a small in-memory stand-in of the
/v1/live endpoints, which also runs the cut-connection test without the real origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from real_clients import SORI, SPEECH, Origin, free_port, local_env, make_speech, serve

from sori.client import LiveClient, LiveError, PcmFormat

REPO = Path(__file__).resolve().parents[2]
API_KEY = "live-test-key"

# --- media and processes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-media")


@pytest.fixture(scope="module")
def speech(media: Path) -> Path:
    """About 16 s of espeak-ng speech: 22.05 kHz mono WAV."""
    return make_speech(media / "speech.wav", SPEECH, minimum=12.0)


def wav_pcm(path: Path) -> tuple[PcmFormat, bytes]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        return PcmFormat(w.getframerate(), w.getnchannels()), w.readframes(w.getnframes())


def wav_seconds(path: Path) -> float:
    fmt, pcm = wav_pcm(path)
    return fmt.seconds(len(pcm))


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True,
                   capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def live_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    """`sori serve` on a fresh local store, for this module."""
    work = tmp_path_factory.mktemp("live-origin")
    with serve(local_env(work / "media", SORI_ORIGIN_UPLOAD_DIR=str(work / "uploads")),
               work / "serve.log") as origin:
        yield origin


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def sori_live(*args: str, env: dict[str, str] | None = None,
              module: bool = False) -> subprocess.CompletedProcess[str]:
    """`sori live ARGS` (or `python -m sori live ARGS`) in its own process."""
    head = [sys.executable, "-m", "sori"] if module else [str(SORI)]
    env = {k: v for k, v in (env or os.environ).items()
           if not k.startswith("SORI_") or k.startswith("SORI_TEST_") or k == "SORI_API_KEY"}
    return subprocess.run([*head, "live", *args], env=env, capture_output=True, text=True,
                          timeout=180, cwd=REPO)


def assert_sealed(base: str, asset_id: str, seconds: float) -> dict[str, Any]:
    """The asset is sealed and holds `seconds` of audio once: sealing completes the last
    part and gives the last segment at least a quarter of the target duration, so the
    asset may run up to that much longer than what was sent, never a chunk longer."""
    status, rec = get_json(f"{base}/v1/assets/{asset_id}")
    assert status == 200, rec
    assert rec["state"] == "ready", rec
    live = rec.get("live") or {}
    pad = 0.25 * live.get("target_duration", 4) + live.get("part_duration", 0.5)
    assert seconds - 0.05 <= rec["duration"] <= seconds + pad, (rec["duration"], seconds, pad)
    return dict(rec)


# --- `sori live` against the real origin ---------------------------------------------------


def test_sori_live_pushes_a_file_and_seals_it(live_origin: Origin, speech: Path) -> None:
    proc = sori_live(str(speech), "--id", "cli-speech", "--title", "CLI speech",
                     "--url", live_origin.base)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "cli-speech", proc.stdout
    rec = assert_sealed(live_origin.base, "cli-speech", wav_seconds(speech))
    assert rec["title"] == "CLI speech"
    again = sori_live(str(speech), "--id", "cli-speech", "--url", live_origin.base)
    assert again.returncode == 2, again.stderr  # the id is taken
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "409" in lines[0], lines
    assert get_json(f"{live_origin.base}/v1/assets/cli-speech")[1]["version"] == rec["version"]


def test_python_m_sori_live_in_real_time_from_stereo_mp3(live_origin: Origin, speech: Path,
                                                         media: Path) -> None:
    """A compressed stereo 44.1 kHz source, decoded by ffmpeg and paced at real time."""
    clip = media / "clip.mp3"
    ffmpeg("-i", str(speech), "-t", "3", "-ac", "2", "-ar", "44100", "-c:a", "libmp3lame",
           "-b:a", "128k", str(clip))
    start = time.monotonic()
    proc = sori_live(str(clip), "--id", "rt-mp3", "--realtime", "--chunk-ms", "250",
                     "--url", live_origin.base, module=True)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "rt-mp3", proc.stdout
    assert elapsed >= 2.7, f"3 s of audio sent in {elapsed:.2f} s: not real time"
    assert_sealed(live_origin.base, "rt-mp3", 3.0)


def test_sori_live_with_an_api_key(speech: Path, media: Path,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    """An origin with write keys: SORI_API_KEY (or --api-key) is sent; without it, exit 1."""
    work = tmp_path_factory.mktemp("keyed-origin")
    clip = media / "short.wav"
    ffmpeg("-i", str(speech), "-t", "2", str(clip))
    env = local_env(work / "media", SORI_ORIGIN_UPLOAD_DIR=str(work / "uploads"),
                    SORI_SECURITY_API_KEYS=json.dumps([API_KEY]))
    with serve(env, work / "serve.log") as origin:
        refused = sori_live(str(clip), "--id", "keyed", "--url", origin.base)
        assert refused.returncode == 1, refused.stderr
        assert "401" in refused.stderr, refused.stderr
        assert get_json(f"{origin.base}/v1/assets/keyed")[0] == 404
        ok = sori_live(str(clip), "--id", "keyed", "--url", origin.base,
                       env={**os.environ, "SORI_API_KEY": API_KEY})
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip().splitlines()[-1] == "keyed"
        assert_sealed(origin.base, "keyed", wav_seconds(clip))


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "video-only"])
def test_bad_input_exits_2_and_creates_nothing(kind: str, live_origin: Origin,
                                               media: Path) -> None:
    path = media / f"bad-{kind}.{'mp4' if kind == 'video-only' else 'wav'}"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not audio\n" * 50)
    elif kind == "video-only":
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1",
               "-c:v", "libx264", "-preset", "veryfast", str(path))
    asset_id = f"bad-{kind}"
    proc = sori_live(str(path), "--id", asset_id, "--url", live_origin.base)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0], lines
    assert proc.stdout == ""
    assert get_json(f"{live_origin.base}/v1/assets/{asset_id}")[0] == 404


def test_an_unreachable_origin_exits_1(speech: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = sori_live(str(speech), "--id", "nowhere", "--url", url)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the origin at {url}" in lines[0], lines


# --- LiveClient against the real origin ------------------------------------------------------


async def test_live_client_pushes_pcm_and_seals_it(live_origin: Origin, speech: Path) -> None:
    fmt, pcm = wav_pcm(speech)
    size = fmt.chunk_bytes(250)
    chunks = [pcm[i:i + size] for i in range(0, len(pcm), size)]
    async with LiveClient(live_origin.base, "client-speech", title="Client speech",
                          format=fmt.as_format()) as live:
        assert live.asset["id"] == "client-speech" and live.asset["state"] == "live"
        assert live.asset["hls"] and live.asset["dash"]
        for chunk in chunks:
            ack = await live.send(chunk)
            assert ack["duplicate"] is False
        record = await live.end()
    assert record["state"] == "ready" and record["id"] == "client-speech"
    assert live.seq == len(chunks) and live.bytes_sent == len(pcm)
    assert_sealed(live_origin.base, "client-speech", fmt.seconds(len(pcm)))
    with pytest.raises(LiveError) as refused:  # the id is taken now
        async with LiveClient(live_origin.base, "client-speech", format=fmt.as_format()):
            pass
    assert refused.value.status == 409


# --- a connection cut in the middle of a chunk ---------------------------------------------


class CuttingProxy:
    """A TCP proxy to 127.0.0.1:`upstream` that cuts one connection: the first request whose
    head contains `marker` is dropped before it reaches the origin (`when="request"`), or is
    forwarded whole and its connection closed as the answer starts (`when="response"`)."""

    def __init__(self, upstream: int, marker: bytes, when: str) -> None:
        self.upstream, self.marker, self.when = upstream, marker, when
        self.cut = False
        self._armed: object | None = None  # the connection whose answer is to be dropped
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        conn = object()

        def close() -> None:
            writer.close()
            up_writer.close()

        async def to_origin() -> None:
            while data := await reader.read(65536):
                if not self.cut and self.marker in data:
                    if self.when == "request":
                        self.cut = True
                        return close()
                    self._armed = conn
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if self._armed is conn and not self.cut:
                    self.cut = True
                    return close()
                writer.write(data)
                await writer.drain()
            writer.close()

        tasks = [asyncio.create_task(to_origin()), asyncio.create_task(to_client())]
        self._tasks.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._tasks.difference_update(tasks)
            close()


class FakeLive:
    """The /v1/live endpoints of CONTRACT.md §4 in memory (raw PCM only): enough to test the
    client's side of the protocol without the origin's packager."""

    def __init__(self) -> None:
        self.streams: dict[str, dict[str, Any]] = {}
        self.fail_once: set[int] = set()  # seqs answered 503 the first time
        self.duplicate_as_gap = False  # answer a repeated seq 409 {"expected": next}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/live", self.create)
        app.router.add_post("/v1/live/{id}/chunks", self.chunk)
        app.router.add_post("/v1/live/{id}/end", self.end)
        app.router.add_get("/v1/assets/{id}", self.asset)
        return app

    def record(self, asset_id: str) -> dict[str, Any]:
        s = self.streams[asset_id]
        fmt = PcmFormat(s["format"]["sample_rate"], s["format"]["channels"])
        return {"id": asset_id, "title": s["title"], "state": s["state"],
                "duration": fmt.seconds(sum(map(len, s["chunks"]))),
                "hls": f"/assets/{asset_id}/master.m3u8",
                "dash": f"/assets/{asset_id}/manifest.mpd"}

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["id"] in self.streams:
            return web.json_response({"error": "exists"}, status=409)
        self.streams[body["id"]] = {"title": body.get("title"), "format": body["format"],
                                    "state": "live", "chunks": []}
        return web.json_response(self.record(body["id"]), status=201)

    async def chunk(self, request: web.Request) -> web.Response:
        s = self.streams.get(request.match_info["id"])
        if s is None:
            return web.json_response({"error": "no such stream"}, status=404)
        data, seq, have = await request.read(), int(request.query["seq"]), len(s["chunks"])
        if s["state"] != "live":
            return web.json_response({"error": "the stream has ended"}, status=409)
        if seq in self.fail_once:
            self.fail_once.discard(seq)
            return web.json_response({"error": "busy"}, status=503)
        if seq < have and not self.duplicate_as_gap:
            return web.json_response({"seq": seq, "duplicate": True})
        if seq != have:
            return web.json_response({"error": "gap", "expected": have}, status=409)
        s["chunks"].append(data)
        return web.json_response({"seq": seq, "duplicate": False})

    async def end(self, request: web.Request) -> web.Response:
        self.streams[request.match_info["id"]]["state"] = "ready"
        return web.json_response(self.record(request.match_info["id"]))

    async def asset(self, request: web.Request) -> web.Response:
        if request.match_info["id"] not in self.streams:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(self.record(request.match_info["id"]))


@dataclass
class Ingest:
    """Where a test pushes: the real origin, or the in-memory stand-in (`fake`)."""

    base: str
    port: int
    fake: FakeLive | None = None
    ids: list[str] = field(default_factory=list)


@pytest.fixture(params=["fake", "sori"])
async def ingest(request: pytest.FixtureRequest, aiohttp_server: Any) -> Ingest:
    if request.param == "fake":
        fake = FakeLive()
        server = await aiohttp_server(fake.app())
        return Ingest(f"http://127.0.0.1:{server.port}", server.port, fake)
    origin: Origin = request.getfixturevalue("live_origin")
    return Ingest(origin.base, origin.port)


@pytest.mark.parametrize("when", ["request", "response"])
async def test_a_chunk_cut_off_is_retried_and_kept_once(when: str, ingest: Ingest,
                                                        speech: Path) -> None:
    fmt, pcm = wav_pcm(speech)
    size = fmt.chunk_bytes(1500)  # a doubled or lost chunk: 1.5 s more or less
    chunks = [pcm[i:i + size] for i in range(0, len(pcm), size)]
    asset_id = f"cut-{when}"
    acks = []
    proxy = CuttingProxy(ingest.port, b"chunks?seq=2 ", when)
    async with proxy as base, LiveClient(base, asset_id, format=fmt.as_format(),
                                         backoff=0.05) as live:
        for chunk in chunks:
            acks.append(await live.send(chunk))
        record = await live.end()
    assert proxy.cut
    assert [a["seq"] for a in acks] == list(range(len(chunks)))
    assert acks[2]["duplicate"] is (when == "response")  # the origin had it already
    assert live.seq == len(chunks) and live.bytes_sent == len(pcm)
    assert record["state"] == "ready"
    if ingest.fake is not None:
        assert b"".join(ingest.fake.streams[asset_id]["chunks"]) == pcm
    else:
        assert_sealed(ingest.base, asset_id, fmt.seconds(len(pcm)))


# --- the client's protocol handling (the stand-in only) -----------------------------------


@pytest.fixture
async def fake(aiohttp_server: Any) -> tuple[FakeLive, str]:
    live = FakeLive()
    server = await aiohttp_server(live.app())
    return live, f"http://127.0.0.1:{server.port}"


FMT = PcmFormat(16000, 1)
CHUNK = bytes(FMT.chunk_bytes(100))


async def test_a_5xx_is_retried(fake: tuple[FakeLive, str]) -> None:
    live_app, base = fake
    live_app.fail_once = {1}
    async with LiveClient(base, "busy", format=FMT.as_format(), backoff=0.01) as live:
        for _ in range(3):
            await live.send(CHUNK)
    assert len(live_app.streams["busy"]["chunks"]) == 3
    assert live_app.streams["busy"]["state"] == "ready"  # left normally: ended


async def test_a_409_naming_the_next_seq_means_received(fake: tuple[FakeLive, str]) -> None:
    """An origin that answers a repeated seq with a gap naming the seq after it."""
    live_app, base = fake
    live_app.duplicate_as_gap = True
    async with LiveClient(base, "resent", format=FMT.as_format()) as first:
        await first.send(CHUNK)
        async with LiveClient(base, "resent", create=False, seq=0,
                              format=FMT.as_format()) as again:
            ack = await again.send(CHUNK)  # chunk 0 again, as after a lost answer
            assert ack["seq"] == 0 and ack["duplicate"] is True and again.seq == 1
            await again.send(CHUNK)
    assert first.record is not None and first.record["state"] == "ready"
    assert len(live_app.streams["resent"]["chunks"]) == 2


async def test_a_gap_raises_with_the_expected_seq(fake: tuple[FakeLive, str]) -> None:
    live_app, base = fake
    async with LiveClient(base, "gap", format=FMT.as_format()) as live:
        await live.send(CHUNK)
        await live.send(CHUNK)
        other = LiveClient(base, "gap", create=False, seq=5, format=FMT.as_format())
        with pytest.raises(LiveError) as err:
            async with other:
                await other.send(CHUNK)
        assert err.value.status == 409 and err.value.expected == 2
        assert "expected" in str(err.value)
        assert other.seq == 5 and other.bytes_sent == 0
        await live.send(CHUNK)  # left by an exception, `other` did not end the stream
    assert len(live_app.streams["gap"]["chunks"]) == 3


async def test_an_exception_leaves_the_stream_open(fake: tuple[FakeLive, str]) -> None:
    live_app, base = fake
    with contextlib.suppress(RuntimeError):
        async with LiveClient(base, "crashed", format=FMT.as_format()) as live:
            await live.send(CHUNK)
            raise RuntimeError("the TTS engine failed")
    assert live_app.streams["crashed"]["state"] == "live"
    async with LiveClient(base, "crashed", create=False, seq=live.seq,
                          format=FMT.as_format()) as resumed:  # a restarted producer
        assert resumed.asset["state"] == "live"
        await resumed.send(CHUNK)
        record = await resumed.end()
    assert record["state"] == "ready" and len(live_app.streams["crashed"]["chunks"]) == 2


async def test_refusals_raise_with_the_origins_message(fake: tuple[FakeLive, str]) -> None:
    _live_app, base = fake
    async with LiveClient(base, "taken", format=FMT.as_format()):
        pass
    with pytest.raises(LiveError, match="exists") as err:
        async with LiveClient(base, "taken", format=FMT.as_format()):
            pass
    assert err.value.status == 409
    with pytest.raises(LiveError, match="not live"):
        async with LiveClient(base, "taken", create=False):
            pass
    with pytest.raises(LiveError) as missing:
        async with LiveClient(base, "nobody", create=False):
            pass
    assert missing.value.status == 404
    async with LiveClient(base, "odd", format=FMT.as_format()) as live:
        with pytest.raises(ValueError, match="whole sample frames"):
            await live.send(b"\x00")
