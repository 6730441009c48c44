"""Live ingest with real parts: espeak-ng speech turned by ffmpeg into each format a TTS
engine emits (raw PCM at 24 and 22.05 kHz, a streamed WAV with unknown sizes, MP3, Ogg/Opus,
AAC ADTS, each also as `auto`), pushed faster than real time through POST chunks, one PUT
stream and one WebSocket into the origin on a real socket, on both stores; then sealed and
checked as any VOD asset: state, duration, every media playlist, the DASH MPD against the
XSD, CMAF boxes and tfdt continuity, and on some formats the loudness of every rung."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_api_support import Event, read_events
from test_live_support import (
    ENCODINGS,
    LUFS,
    LiveHttp,
    check_sealed,
    encode,
    in_process,
    live_config,
    loudness,
    make_speech,
    padded_seconds,
    wav_pcm,
)

from storage.base import Store
from storage.local import LocalStore

# (encoding, declared): declared=False pushes the same bytes as {"codec": "auto"}
CASES = [("pcm_24k", True), ("pcm_22k", True), ("wav_stream", True), ("mp3", True),
         ("opus", True), ("aac", True), ("wav_stream", False), ("mp3", False),
         ("opus", False), ("aac", False)]
# Loudness is measured on two of them (one read as PCM, one through the decoder).
LOUDNESS = {("pcm_22k", True), ("opus", False)}
# Compressed formats decode a little longer than the source (encoder delay and padding
# that a pipe carries no header to trim): at most this many seconds.
CODEC_SLACK = {"mp3": 0.1, "aac": 0.1, "opus": 0.03}
CHUNK = 7777  # odd: chunks split PCM samples and compressed frames anywhere


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 9 s of espeak-ng speech (22.05 kHz mono)."""
    return make_speech(tmp_path_factory.mktemp("live-ingest") / "speech.wav", minimum=7.0)


def seconds_of(wav: Path) -> float:
    rate, channels, pcm = wav_pcm(wav)
    return len(pcm) / (2 * rate * channels)


async def assert_sealed(http: LiveHttp, asset_id: str, seconds: float, *, slack: float = 0.0,
                        store: Store | None = None) -> dict[str, Any]:
    """check_sealed with a duration window that allows a codec's few extra milliseconds;
    and a producer ahead of real time never gets silence but the end padding."""
    status, rec = await http.record(asset_id)
    assert status == 200
    live = rec["live"]
    low = padded_seconds(seconds, live["part_duration"], live["segment_duration"])
    high = padded_seconds(seconds + slack, live["part_duration"], live["segment_duration"])
    assert low - 0.05 <= rec["duration"] <= high + 0.05, (rec["duration"], low, high)
    await check_sealed(http, asset_id, seconds, store=store, tolerance=high - low + 0.05)
    # Pushed far ahead of real time: no silence is inserted (the end padding, to the last
    # part and the segment minimum, is counted apart), never a pause inside the speech.
    assert rec["silence_inserted"] <= 0.05, rec["silence_inserted"]
    pad = rec["live"]["end_padding_seconds"]
    assert 0.0 <= pad <= high - seconds + 0.2, (pad, high - seconds)
    return dict(rec)


@pytest.mark.parametrize(("kind", "declared"), CASES,
                         ids=[f"{k}-{'declared' if d else 'auto'}" for k, d in CASES])
async def test_each_format_streams_and_seals(kind: str, declared: bool, speech: Path,
                                             tmp_path: Path, origin_client: Any) -> None:
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    data = encode(speech, kind)
    fmt = ENCODINGS[kind][1] if declared else {"codec": "auto"}
    asset_id = f"talk-{kind.replace('_', '-')}"
    created = await http.start(asset_id, fmt, title=f"Live {kind}")
    assert created["hls"] == f"/assets/{asset_id}/master.m3u8"
    assert created["dash"] == f"/assets/{asset_id}/manifest.mpd"
    await http.push(asset_id, data, size=CHUNK)
    rec = await http.finish(asset_id)
    assert rec["title"] == f"Live {kind}"
    assert rec["source"]["format"]["codec"] == fmt["codec"]
    seconds = seconds_of(speech)
    await assert_sealed(http, asset_id, seconds, slack=CODEC_SLACK.get(kind, 0.0), store=store)
    if (kind, declared) in LOUDNESS:
        for rung, path in (await http.media_playlists(asset_id)).items():
            integrated, peak = await asyncio.to_thread(loudness, http.url(path))
            assert abs(integrated - LUFS) <= 2.0, (rung, integrated)
            assert peak <= -1.0, (rung, peak)


async def test_parts_and_segments_reach_each_store_while_live(store: Store, speech: Path,
                                                              tmp_path: Path,
                                                              origin_client: Any) -> None:
    """Local and S3 (moto): parts and segments are in the store as they are cut, before
    the end; the sealed asset is complete there too."""
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    await http.start("stored", ENCODINGS["pcm_24k"][1])
    await http.push("stored", encode(speech, "pcm_24k"), size=32 * 1024)
    rec = json.loads(await store.get("stored/asset.json"))
    assert rec["state"] == "live"
    version = rec["version"]
    deadline = asyncio.get_running_loop().time() + 20
    while True:  # the encoder catches up with what was pushed
        keys = set(await store.list("stored/"))
        want = {f"stored/v/{version}/{rung}/{name}" for rung in ("low", "medium", "high")
                # segment 1 is one part (a player joining needs a whole segment at once),
                # the others eight
                for name in ("init.mp4", "seg_00001.0.m4s", "seg_00001.m4s", "seg_00002.0.m4s",
                             "seg_00002.7.m4s", "seg_00002.m4s", "seg_00003.m4s")}
        if want <= keys:
            break
        assert asyncio.get_running_loop().time() < deadline, sorted(want - keys)
        await asyncio.sleep(0.1)
    status, live = await http.record("stored")
    assert status == 200 and live["state"] == "live"
    await http.finish("stored")
    await assert_sealed(http, "stored", seconds_of(speech), store=store)
    keys = set(await store.list("stored/"))
    assert f"stored/v/{version}/download.m4a" in keys
    assert want <= keys  # nothing published is taken away by sealing


async def test_put_stream_ends_with_its_body(speech: Path, tmp_path: Path,
                                             origin_client: Any) -> None:
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    await http.start("put", {"codec": "auto"})
    data = encode(speech, "mp3")

    async def body() -> Any:
        for at in range(0, len(data), 5000):
            yield data[at:at + 5000]
            await asyncio.sleep(0.005)

    async with client.session.put(f"{base}/v1/live/put/stream", data=body()) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 200, await resp.text()
        rec = await resp.json()
    assert rec["state"] == "ready" and rec["id"] == "put"
    await assert_sealed(http, "put", seconds_of(speech), slack=CODEC_SLACK["mp3"], store=store)


async def test_websocket_pushes_and_ends_and_events_follow(speech: Path, tmp_path: Path,
                                                           origin_client: Any) -> None:
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    await http.start("ws", ENCODINGS["pcm_22k"][1])
    data = encode(speech, "pcm_22k")

    async def follow() -> list[Event | str]:
        async with aiohttp.ClientSession() as s, s.get(f"{base}/v1/live/ws/events") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            return await read_events(resp)

    events = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    async with client.session.ws_connect(f"{base}/v1/live/ws/ws") as ws:
        for at in range(0, len(data), 9001):
            await ws.send_bytes(data[at:at + 9001])
        await ws.send_str(json.dumps({"end": True}))
        msg = await ws.receive_json(timeout=60)
        assert msg["asset"]["state"] == "ready", msg
        closing = await ws.receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    rec = await assert_sealed(http, "ws", seconds_of(speech), store=store)
    assert msg["asset"]["duration"] == rec["duration"]
    seen = [e for e in await asyncio.wait_for(events, 30) if isinstance(e, Event)]
    names = [e.event for e in seen]
    assert names.count("started") == 1 and names[-1] == "ended" and "progress" in names, names
    # before the first audio, progress says the producer is waiting and nothing is out
    for e in seen[:names.index("started")]:
        assert e.json()["producer"] == "waiting" and e.json()["media_seconds"] == 0, e
    media = [e.json()["media_seconds"] for e in seen]
    assert media == sorted(media) and media[-2] > 0, media
    assert seen[-1].json()["state"] == "ready"
    assert abs(seen[-1].json()["media_seconds"] - rec["duration"]) < 0.01
