"""Support for the live tests (test_live_ingest, test_live_playlists, test_live_faults); no
tests here.

    make_speech(path, text)              espeak-ng speech (22.05 kHz mono WAV)
    encode(wav, kind)                    the bytes a TTS engine would push, made by ffmpeg
    LiveHttp(session, base)              a client of /v1/live and the media URLs
    in_process(origin_client, store)     the origin app on a real socket, on a given store
    serve(env, log)                      `sori serve` in a process of its own (real_clients)
    check_sealed(http, id, seconds)      everything a sealed live asset must be (VOD rules)
    loudness(url)                        integrated loudness and true peak, ffmpeg ebur128

Everything is real: ffmpeg, espeak-ng, the origin on a socket, the store (local or S3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from audio_checks import check_packaged_audio, dash_schema
from llhls_rules import MediaPlaylist, check_vod_media, parse_multivariant
from lxml import etree
from real_clients import free_port, local_env, require_tool, s3_env, serve

from origin.app import create_app
from settings import Config, LiveConfig, OriginConfig, SecurityConfig
from storage.base import Store

__all__ = ["TARGET", "LUFS", "TEXT", "SHORT_TEXT", "make_speech", "wav_pcm", "encode",
           "ENCODINGS", "LiveHttp", "Fetched", "in_process", "live_config", "serve",
           "local_env", "s3_env", "free_port", "check_sealed", "loudness", "padded_seconds",
           "mpd_type", "validate_mpd", "decode_pcm"]

TARGET = 2  # EXT-X-TARGETDURATION of every live asset with the default [live] settings
LUFS = -16.0  # packager.loudness_target
TEXT = ("Good evening. This is a live stream of synthetic speech, pushed to the origin "
        "while it is being spoken. Every listener hears it from the first word.")
SHORT_TEXT = "A short sentence, spoken once."
MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


# --- media ---------------------------------------------------------------------------------


def make_speech(path: Path, text: str = TEXT, minimum: float = 1.0) -> Path:
    """espeak-ng speech as a 22.05 kHz mono 16-bit WAV."""
    require_tool("espeak-ng", "apt-get install espeak-ng (`make demo` does)")
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(path), text], check=True,
                   capture_output=True, timeout=60)
    rate, channels, pcm = wav_pcm(path)
    assert len(pcm) / (2 * rate * channels) >= minimum, "espeak-ng made too little speech"
    return path


def wav_pcm(path: Path) -> tuple[int, int, bytes]:
    """(rate, channels, s16le samples) of a WAV."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def _ffmpeg(*args: str) -> bytes:
    require_tool("ffmpeg", "apt-get install ffmpeg (`make demo` does)")
    done = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *args],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout


# kind -> (ffmpeg output options, the `format` object of POST /v1/live)
ENCODINGS: dict[str, tuple[list[str], dict[str, Any]]] = {
    # OpenAI TTS `pcm`: 24 kHz mono s16le; Piper: 22.05 kHz mono
    "pcm_24k": (["-ar", "24000", "-ac", "1", "-f", "s16le"],
                {"codec": "pcm_s16le", "sample_rate": 24000, "channels": 1}),
    "pcm_22k": (["-ar", "22050", "-ac", "1", "-f", "s16le"],
                {"codec": "pcm_s16le", "sample_rate": 22050, "channels": 1}),
    # a WAV written to a pipe: ffmpeg cannot seek back, so RIFF and data sizes stay 0xFFFFFFFF
    "wav_stream": (["-ar", "24000", "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav"],
                   {"codec": "wav"}),
    # ElevenLabs' default mp3_44100_128
    "mp3": (["-ar", "44100", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
            {"codec": "mp3"}),
    "opus": (["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"], {"codec": "opus"}),
    "aac": (["-ar", "24000", "-ac", "1", "-c:a", "aac", "-b:a", "64k", "-f", "adts"],
            {"codec": "aac"}),
}


def encode(src: Path, kind: str) -> bytes:
    """The speech in `src` as the byte stream of `kind` (see ENCODINGS), written to a pipe
    as an engine streams it."""
    data = _ffmpeg("-i", str(src), *ENCODINGS[kind][0], "pipe:1")
    if kind == "wav_stream":
        assert data[:4] == b"RIFF" and data[4:8] == b"\xff\xff\xff\xff", data[:16]
        at = data.index(b"data")
        assert data[at + 4:at + 8] == b"\xff\xff\xff\xff", "the data size is not 0xFFFFFFFF"
    return data


def decode_pcm(url_or_path: str, rate: int = 8000, *extra: str) -> bytes:
    """Decode anything ffmpeg reads (a playlist URL, a file) to mono s16le at `rate`."""
    return _ffmpeg(*extra, "-i", url_or_path, "-ac", "1", "-ar", str(rate), "-f", "s16le",
                   "pipe:1")


def loudness(url: str) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of what `url` plays, by ffmpeg's ebur128."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-nostats", "-hide_banner", "-i", url,
                           "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = done.stderr[done.stderr.rindex("Summary:"):]
    integrated = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", summary)[-1])
    peak = float(re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)[-1])
    return integrated, peak


# --- the origin ----------------------------------------------------------------------------


def live_config(tmp_path: Path, *, api_keys: tuple[str, ...] = (), **live: Any) -> Config:
    """Defaults everywhere (the full ladder, loudness on) but the upload directory."""
    return Config(
        origin=dataclasses.replace(OriginConfig(), upload_dir=str(tmp_path / "uploads"),
                                   access_log=False),
        security=dataclasses.replace(SecurityConfig(), api_keys=api_keys),
        live=dataclasses.replace(LiveConfig(), **live),
    ).validate()


async def in_process(origin_client: Callable[..., Awaitable[Any]], store: Store,
                     cfg: Config) -> tuple[Any, str]:
    """The origin's app on `store`, served on a real socket as `sori serve` serves it (the
    conftest `origin_client`); returns (TestClient, base URL)."""
    client = await origin_client(create_app(cfg, store))
    return client, str(client.make_url("")).rstrip("/")


# --- HTTP ------------------------------------------------------------------------------------


@dataclass
class Fetched:
    status: int
    headers: Any  # CIMultiDictProxy
    body: bytes
    sent: float  # time.time() when the request was sent
    done: float  # time.time() when the whole body was in

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def held(self) -> float:
        return self.done - self.sent

    def json(self) -> Any:
        return json.loads(self.body)


class LiveHttp:
    """The /v1/live endpoints and the media URLs of one origin, over aiohttp."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str | None = None
                 ) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self.key = key

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def auth(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        out = dict(headers or {})
        if self.key is not None:
            out.setdefault("Authorization", f"Bearer {self.key}")
        return out

    async def request(self, method: str, path: str, *, data: Any = None, json_body: Any = None,
                      headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
                      timeout: float = 60.0) -> Fetched:
        sent = time.time()
        async with self.session.request(
                method, self.url(path), data=data, json=json_body, params=params,
                headers=self.auth(headers) if method != "GET" else (headers or {}),
                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.read()
            return Fetched(resp.status, resp.headers, body, sent, time.time())

    async def get(self, path: str, params: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None, timeout: float = 60.0) -> Fetched:
        return await self.request("GET", path, params=params, headers=headers, timeout=timeout)

    async def create(self, asset_id: str | None, fmt: dict[str, Any] | None = None,
                     **fields: Any) -> Fetched:
        body: dict[str, Any] = dict(fields)
        if asset_id is not None:
            body["id"] = asset_id
        if fmt is not None:
            body["format"] = fmt
        return await self.request("POST", "/v1/live", json_body=body)

    async def start(self, asset_id: str, fmt: dict[str, Any] | None = None,
                    **fields: Any) -> dict[str, Any]:
        """Create the stream; it must be accepted (201, state live)."""
        res = await self.create(asset_id, fmt, **fields)
        assert res.status == 201, (res.status, res.body)
        rec: dict[str, Any] = res.json()
        assert rec["id"] == asset_id and rec["state"] == "live", rec
        return rec

    async def chunk(self, asset_id: str, seq: int, data: bytes) -> Fetched:
        return await self.request("POST", f"/v1/live/{asset_id}/chunks", data=data,
                                  params={"seq": str(seq)})

    async def push(self, asset_id: str, data: bytes, *, size: int = 16 * 1024, seq: int = 0,
                   pace: float | None = None, lead: float = 0.3) -> int:
        """POST `data` in chunks of `size` bytes from `seq`; each must be taken. `pace`:
        bytes per second of audio, to push in real time keeping `lead` seconds ahead (as
        an engine does); None pushes as fast as the origin takes it. Returns the next seq."""
        t0 = time.monotonic()
        for at in range(0, len(data), size):
            if pace is not None:
                due = t0 + at / pace - lead
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            res = await self.chunk(asset_id, seq, data[at:at + size])
            assert res.status == 200, (seq, res.status, res.body)
            ack = res.json()
            assert ack["seq"] == seq and ack["duplicate"] is False and ack["expected"] == seq + 1
            seq += 1
        return seq

    async def end(self, asset_id: str) -> Fetched:
        return await self.request("POST", f"/v1/live/{asset_id}/end", timeout=120)

    async def finish(self, asset_id: str) -> dict[str, Any]:
        res = await self.end(asset_id)
        assert res.status == 200, (res.status, res.body)
        rec: dict[str, Any] = res.json()
        assert rec["state"] == "ready", rec
        return rec

    async def record(self, asset_id: str) -> tuple[int, Any]:
        res = await self.get(f"/v1/assets/{asset_id}")
        return res.status, res.json() if res.body else None

    async def wait_ready(self, asset_id: str, seconds: float) -> dict[str, Any]:
        """Poll the record until it says ready (a timeout seal, a recovery)."""
        deadline = time.monotonic() + seconds
        while True:
            status, rec = await self.record(asset_id)
            if status == 200 and rec["state"] == "ready":
                return dict(rec)
            assert time.monotonic() < deadline, f"{asset_id} not ready: {status} {rec}"
            await asyncio.sleep(0.2)

    async def media_playlists(self, asset_id: str) -> dict[str, str]:
        """rung id -> the media playlist's URL path, from the multivariant playlist."""
        res = await self.get(f"/assets/{asset_id}/master.m3u8")
        assert res.status == 200, res.status
        mv = parse_multivariant(res.text)
        return {uri.split("/")[-2]: f"/assets/{asset_id}/{uri}" for uri in mv.media_playlist_uris}


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at:at + size]
        await asyncio.sleep(0)


# --- checks ----------------------------------------------------------------------------------


def padded_seconds(seconds: float, part: float, segment: float, target: int = TARGET) -> float:
    """Where a stream of `seconds` of audio ends once sealed: its last part completed and
    its last segment at least a quarter of the target duration (silence padding)."""
    per = round(segment / part)
    end = max(1, math.ceil(seconds / part - 1e-9))
    first = ((end - 1) // per) * per
    need = math.ceil(0.25 * target / part - 1e-9)
    return max(end, first + min(need, per)) * part


def validate_mpd(body: bytes) -> etree._Element:
    mpd = etree.fromstring(body)
    schema = dash_schema()
    assert schema.validate(mpd), schema.error_log
    return mpd


def mpd_type(mpd: etree._Element) -> str:
    return str(mpd.get("type", "static"))


async def check_sealed(http: LiveHttp, asset_id: str, seconds: float, *,
                       store: Store | None = None, tolerance: float = 0.15) -> dict[str, Any]:
    """The asset is an ordinary VOD asset now, over HTTP (and in `store` when given: CMAF
    boxes, tfdt continuity, measured bandwidths, aligned renditions); its duration is the
    `seconds` of audio pushed plus the end padding. Returns the record."""
    status, rec = await http.record(asset_id)
    assert status == 200, rec
    assert rec["state"] == "ready" and rec["kind"] == "audio", rec
    live = rec["live"]
    expected = padded_seconds(seconds, live["part_duration"], live["segment_duration"],
                              live["target_duration"])
    assert abs(rec["duration"] - expected) <= tolerance, (rec["duration"], expected, seconds)
    assert rec["duration"] >= seconds - 0.05, (rec["duration"], seconds)
    assert [r["codecs"] for r in rec["renditions"]] == ["mp4a.40.2"] * len(rec["renditions"])
    res = await http.get(f"/assets/{asset_id}/master.m3u8")
    assert res.status == 200
    mv = parse_multivariant(res.text)
    assert mv.independent_segments and len(mv.variants) == len(rec["renditions"])
    assert all(v.codecs == "mp4a.40.2" and v.average_bandwidth for v in mv.variants), res.text
    for path in (await http.media_playlists(asset_id)).values():
        res = await http.get(path)
        assert res.status == 200, (path, res.status)
        assert "immutable" in res.headers.get("Cache-Control", ""), res.headers
        pl: MediaPlaylist = check_vod_media(res.text, target_duration=TARGET)
        assert pl.segments[0].pdt is not None  # the live program date-time is kept
        total = sum(s.duration for s in pl.segments)
        assert abs(total - rec["duration"]) <= 0.05, (path, total, rec["duration"])
    res = await http.get(f"/assets/{asset_id}/manifest.mpd")
    assert res.status == 200
    mpd = validate_mpd(res.body)
    assert mpd_type(mpd) == "static"
    codecs = {r.get("codecs") for r in mpd.iter(f"{MPD_NS}Representation")}
    assert codecs == {"mp4a.40.2"}, codecs
    if store is not None:
        await check_packaged_audio(store, asset_id, rec["segment_duration"])
    return dict(rec)
