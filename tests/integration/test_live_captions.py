"""Live transcripts (issue 14): real espeak-ng sentences pushed into a live stream with their
text, by every way the ingest takes text, into the origin on a real socket.

- HTTP chunks: `X-Sori-Text` (the chunk's audio says it) and `X-Sori-Cues` (cues timed on
  the producer's audio), with the producer pausing between sentences and in the middle of
  one, so the origin inserts silence: every cue must still start and end at the media time
  of its audio. The reference is the origin's own account of media time (each chunk's
  acknowledgement says where the stream stood once it was taken) and the sealed audio
  itself (silence before a sentence's cue, speech right after its start);
- the WebSocket: a plain text frame, a {"text"} frame, a timed {"text", "start", "end"} frame;
- `sori live --transcript FILE` (the CLI, in a process of its own).

While live: the multivariant playlist declares the WebVTT rendition on every variant, its
playlist grows a segment per media segment (blocking reload included), each segment maps
its times with X-TIMESTAMP-MAP and holds the cues of its window, and the dynamic MPD has a
text AdaptationSet and validates. Sealed: transcript.vtt/.txt and chapters in the record,
the VOD subtitles playlist, segments written while live unchanged. Bad text is a 400 and
its chunk is not taken.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import wave
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from test_live_support import (
    LiveHttp,
    decode_pcm,
    in_process,
    live_config,
    make_speech,
    validate_mpd,
)

from storage.local import LocalStore

RATE = 22050  # espeak-ng's rate; the stream's declared PCM format
FMT = {"codec": "pcm_s16le", "sample_rate": RATE, "channels": 1}
SENTENCES = [
    "The first sentence arrives with its own text.",
    "After a pause, the second one follows.",
    "The third sentence is cut in two, and the producer stops for breath in its middle.",
    "A last short line.",
]
TOLERANCE = 0.002  # s: WebVTT's millisecond, and a frame's rounding either way
PAUSE = 1.0  # s the producer stays silent past real time (the origin fills it)


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Each sentence as s16le PCM at RATE (mono)."""
    work = tmp_path_factory.mktemp("live-captions")
    out = []
    for i, text in enumerate(SENTENCES):
        path = make_speech(work / f"s{i}.wav", text, minimum=0.8)
        with wave.open(str(path)) as w:
            assert w.getframerate() == RATE and w.getnchannels() == 1
            out.append(w.readframes(w.getnframes()))
    return out


def seconds(pcm: bytes) -> float:
    return len(pcm) / (2 * RATE)


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip().split("\n")
        at = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if at is None:
            continue
        a, b = (x.strip().split(" ")[0] for x in lines[at].split("-->"))
        cues.append((_ts(a), _ts(b), "\n".join(lines[at + 1:])))
    return cues


def _ts(value: str) -> float:
    h, m, s = value.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


async def chunk(http: LiveHttp, asset_id: str, seq: int, data: bytes,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    res = await http.request("POST", f"/v1/live/{asset_id}/chunks", data=data,
                             params={"seq": str(seq)}, headers=headers)
    assert res.status == 200, (seq, res.status, res.body)
    ack: dict[str, Any] = res.json()
    return ack


async def wait_behind(started: float, media: float, pause: float) -> None:
    """Sleep until the producer is `pause` seconds behind real time: the stream's clock
    started at `started` (loop time) and holds `media` seconds (fills included)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, started + media + pause - loop.time()))


def envelope(pcm: bytes, rate: int, at: float, span: float) -> float:
    """RMS (0..1) of the decoded audio over [at, at + span)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    a, b = int(at * rate), int((at + span) * rate)
    window = x[max(0, a):max(0, b)]
    return float(np.sqrt(np.mean(window ** 2))) if len(window) else 0.0


async def test_http_text_stays_on_its_audio_across_silence(voices: list[bytes], tmp_path: Path,
                                                           origin_client: Any) -> None:
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    rec = await http.start("told", FMT, title="Told live", transcript=True)
    assert rec["live"]["transcript"] is True
    loop = asyncio.get_running_loop()
    expected: list[tuple[float, float, str]] = []

    # 1: one chunk, its text in X-Sori-Text (markup stripped, UTF-8 kept)
    t0 = loop.time()
    ack = await chunk(http, "told", 0, voices[0], {
        "X-Sori-Text": quote("<b>The first sentence</b> arrives with its own text \u2014 caf\u00e9.")})
    expected.append((ack["media_seconds"] - seconds(voices[0]), ack["media_seconds"],
                     "The first sentence arrives with its own text \u2014 caf\u00e9."))
    sent = seconds(voices[0])
    # the producer pauses: the origin writes silence to keep time
    await wait_behind(t0, ack["media_seconds"], PAUSE)
    # 2: after the pause, in one chunk with its text
    ack = await chunk(http, "told", 1, voices[1], {"X-Sori-Text": quote(SENTENCES[1])})
    expected.append((ack["media_seconds"] - seconds(voices[1]), ack["media_seconds"],
                     SENTENCES[1]))
    fill_before_second = expected[1][0] - expected[0][1]
    assert fill_before_second > PAUSE - 0.3, fill_before_second
    sent += seconds(voices[1])
    # 3: a timed cue (seconds of the producer's audio) sent with the chunk its audio starts
    # in; the sentence goes in two chunks with a pause between them
    half = len(voices[2]) // 4 * 2
    cue = {"text": SENTENCES[2], "start": round(sent, 3),
           "end": round(sent + seconds(voices[2]), 3), "chapter": "The long one"}
    ack_a = await chunk(http, "told", 2, voices[2][:half],
                        {"X-Sori-Cues": quote(json.dumps([cue]))})
    start3 = ack_a["media_seconds"] - seconds(voices[2][:half])
    sent += seconds(voices[2][:half])
    await wait_behind(t0, ack_a["media_seconds"], PAUSE)
    ack_b = await chunk(http, "told", 3, voices[2][half:])
    sent += seconds(voices[2][half:])
    gap = (ack_b["media_seconds"] - seconds(voices[2][half:])) - ack_a["media_seconds"]
    assert gap > PAUSE - 0.3, gap  # silence inside the sentence
    expected.append((start3, ack_b["media_seconds"], SENTENCES[2]))
    # 4: no fill; text again with the chunk
    ack = await chunk(http, "told", 4, voices[3], {"X-Sori-Text": quote(SENTENCES[3])})
    expected.append((ack["media_seconds"] - seconds(voices[3]), ack["media_seconds"],
                     SENTENCES[3]))

    # While live: the WebVTT rendition in the multivariant playlist, on every variant.
    master = (await http.get("/assets/told/master.m3u8")).text
    media = re.findall(r'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs".*URI="([^"]+)"', master)
    assert len(media) == 1, master
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert variants and all('SUBTITLES="subs"' in v for v in variants), master
    subs = f"/assets/told/{media[0]}"
    # its playlist grows a segment per media segment; a blocking reload waits for the next
    # (honoured, though not advertised: manifests.llhls.live_subtitles_playlist says why)
    live_pl = (await http.get(subs)).text
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in live_pl and "#EXT-X-ENDLIST" not in live_pl
    assert "#EXT-X-TARGETDURATION:2" in live_pl and "#EXT-X-PROGRAM-DATE-TIME:" in live_pl
    listed = re.findall(r"^(seg_\d{5}\.vtt)$", live_pl, re.M)
    res = await http.get(subs, params={"_HLS_msn": str(len(listed) + 1)})
    assert res.status == 200, res.body
    grown = re.findall(r"^(seg_\d{5}\.vtt)$", res.text, re.M)
    assert len(grown) >= len(listed) + 1, (listed, res.text)
    segs_live = {name: (await http.get(f"{subs.rsplit('/', 1)[0]}/{name}")) for name in grown}
    for name, seg in segs_live.items():
        assert seg.status == 200 and seg.headers["Content-Type"].startswith("text/vtt"), name
        assert seg.text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n"), seg.text
    # a segment asked for before it is written (DASH clients address them by the clock) is
    # held until it is, not a 404
    early = asyncio.create_task(http.get(f"{subs.rsplit('/', 1)[0]}/seg_{len(grown) + 1:05d}.vtt"))
    first_cues = parse_vtt(segs_live["seg_00001.vtt"].text)
    assert first_cues and first_cues[0][2] == expected[0][2]
    assert abs(first_cues[0][0] - expected[0][0]) <= TOLERANCE
    # the dynamic MPD has the text AdaptationSet and still validates
    mpd = validate_mpd((await http.get("/assets/told/manifest.mpd")).body)
    sets = mpd.findall("{urn:mpeg:dash:schema:mpd:2011}Period/{urn:mpeg:dash:schema:mpd:2011}AdaptationSet")
    assert [s.get("contentType") for s in sets] == ["audio", "text"], [s.attrib for s in sets]
    assert sets[1].get("mimeType") == "text/vtt"

    sealed = await http.finish("told")
    held = await early
    assert held.status == 200 and held.text.startswith("WEBVTT"), (held.status, held.body)
    assert sealed["silence_inserted"] > 2 * PAUSE - 0.6, sealed["silence_inserted"]
    # The whole transcript: every cue at the media time of its audio.
    vtt = (await http.get(sealed["transcript"])).text
    got = parse_vtt(vtt)
    assert [c[2] for c in got] == [e[2] for e in expected], got
    for (start, end, text), (want_start, want_end, _t) in zip(got, expected, strict=True):
        assert abs(start - want_start) <= TOLERANCE, (text, start, want_start)
        assert abs(end - want_end) <= TOLERANCE, (text, end, want_end)
    txt = (await http.get(sealed["transcript_text"])).text
    assert txt.split("\n")[0] == expected[0][2] and SENTENCES[3] in txt
    chapters = json.loads((await http.get(sealed["chapters"])).body)
    assert [c["titles"][0]["title"] for c in chapters] == ["The long one"]
    assert abs(chapters[0]["start-time"] - expected[2][0]) <= TOLERANCE

    # The sealed audio agrees: silence just before the cue that follows a fill, speech
    # within the first 0.3 s of every cue (espeak-ng starts a sentence within a few ms).
    pcm = await asyncio.to_thread(decode_pcm, http.url(sealed["hls"]), 8000)
    before = envelope(pcm, 8000, got[1][0] - 0.5, 0.45)
    assert before < 0.003, before
    for start, _end, text in got:
        after = envelope(pcm, 8000, start, 0.3)
        assert after > 0.02, (text, after)
    # the fill inside the third sentence is inside its cue
    mid = expected[2][0] + seconds(voices[2][:half]) + 0.2
    assert envelope(pcm, 8000, mid, PAUSE - 0.4) < 0.003
    assert got[2][0] < mid < got[2][1]

    # Sealed HLS: the VOD subtitles playlist, one segment per media segment; segments
    # written while live are unchanged (immutable URLs).
    master = (await http.get(sealed["hls"])).text
    assert 'TYPE=SUBTITLES' in master and "com.apple.hls.chapters" in master
    vod_pl = (await http.get(subs)).text
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in vod_pl and vod_pl.rstrip().endswith("#EXT-X-ENDLIST")
    names = re.findall(r"^(seg_\d{5}\.vtt)$", vod_pl, re.M)
    audio_pl = (await http.get(next(iter((await http.media_playlists("told")).values())))).text
    assert len(names) == len(re.findall(r"^seg_\d{5}\.m4s$", audio_pl, re.M))
    for name, seg in segs_live.items():
        assert (await http.get(f"{subs.rsplit('/', 1)[0]}/{name}")).body == seg.body, name
    shown = set()
    for name in names:
        for _s, _e, text in parse_vtt((await http.get(f"{subs.rsplit('/', 1)[0]}/{name}")).text):
            shown.add(text)
    assert shown == {e[2] for e in expected}
    mpd = validate_mpd((await http.get(sealed["dash"])).body)
    assert mpd.get("type", "static") == "static"


async def test_websocket_text_frames(voices: list[bytes], tmp_path: Path,
                                     origin_client: Any) -> None:
    """Plain text and {"text"} apply to the next binary frame; a timed frame places its cue
    on the producer's audio. Pushed faster than real time: no fill, so media time is the
    audio's own time."""
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    await http.start("ws-told", FMT, transcript=True)
    t = 0.0
    expected = []
    async with client.session.ws_connect(f"{base}/v1/live/ws-told/ws") as ws:
        await ws.send_str(SENTENCES[0])
        await ws.send_bytes(voices[0])
        expected.append((t, t + seconds(voices[0]), SENTENCES[0]))
        t += seconds(voices[0])
        await ws.send_str(json.dumps({"text": SENTENCES[1]}))
        await ws.send_bytes(voices[1])
        expected.append((t, t + seconds(voices[1]), SENTENCES[1]))
        t += seconds(voices[1])
        # timed: the cue covers the next sentence, which goes in three frames
        await ws.send_str(json.dumps({"text": SENTENCES[2], "start": round(t, 3),
                                      "end": round(t + seconds(voices[2]), 3),
                                      "chapter": True}))
        third = voices[2]
        for i in range(3):
            await ws.send_bytes(third[i * len(third) // 6 * 2:(i + 1) * len(third) // 6 * 2]
                                if i < 2 else third[2 * len(third) // 6 * 2:])
        expected.append((round(t, 3), round(t + seconds(voices[2]), 3), SENTENCES[2]))
        # bad: an overlapping timed cue is refused with a message, the stream goes on
        await ws.send_str(json.dumps({"text": "overlap", "start": 0.5, "end": 1.0}))
        msg = await ws.receive_json(timeout=10)
        assert "before the previous" in msg["error"] or "overlaps" in msg["error"], msg
        await ws.send_str(json.dumps({"end": True}))
        msg = await ws.receive_json(timeout=60)
        assert msg["asset"]["state"] == "ready", msg
    sealed = msg["asset"]
    assert sealed["silence_inserted"] <= 0.05
    got = parse_vtt((await http.get(sealed["transcript"])).text)
    assert [c[2] for c in got] == [e[2] for e in expected]
    for (start, end, _), (ws_, we, text) in zip(got, expected, strict=True):
        assert abs(start - ws_) <= TOLERANCE and abs(end - we) <= TOLERANCE, (text, start, end)
    chapters = json.loads((await http.get(sealed["chapters"])).body)
    assert chapters[0]["titles"][0]["title"] == SENTENCES[2]


async def test_bad_text_is_refused_and_its_chunk_not_taken(voices: list[bytes], tmp_path: Path,
                                                           origin_client: Any) -> None:
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    await http.start("plain", FMT)
    res = await http.request("POST", "/v1/live/plain/chunks", data=voices[0][:4410],
                             params={"seq": "0"}, headers={"X-Sori-Text": "hello"})
    assert res.status == 400 and "transcript" in res.json()["error"], res.body
    assert (await chunk(http, "plain", 0, voices[0][:4410]))["expected"] == 1  # seq 0 was free
    bad = await http.create("bad-flag", FMT, transcript="yes")
    assert bad.status == 400 and "transcript" in bad.json()["error"]
    await http.start("strict", FMT, transcript=True)
    for headers, words in (({"X-Sori-Text": "%FF%FE"}, "UTF-8"),
                           ({"X-Sori-Cues": quote("[{\"text\": \"x\"}]")}, "start"),
                           ({"X-Sori-Cues": quote("not json")}, "JSON")):
        res = await http.request("POST", "/v1/live/strict/chunks", data=voices[0][:4410],
                                 params={"seq": "0"}, headers=headers)
        assert res.status == 400 and words in res.json()["error"], (headers, res.body)
    ok = await chunk(http, "strict", 0, voices[0][:4410], {"X-Sori-Cues": quote(
        json.dumps({"text": "one", "start": 0.0, "end": 0.1}))})
    assert ok["expected"] == 1  # the refused ones took nothing
    res = await http.request("POST", "/v1/live/strict/chunks", data=voices[0][4410:8820],
                             params={"seq": "1"}, headers={"X-Sori-Cues": quote(
                                 json.dumps({"text": "two", "start": 0.05, "end": 0.2}))})
    assert res.status == 400 and "overlaps" in res.json()["error"]
    # a long cue of non-ASCII text fits a header as ASCII JSON (what LiveClient sends: one
    # X-Sori-Cues header per cue), where percent-encoded it would pass the 8 KB limit
    long = "言葉" * 450
    await chunk(http, "strict", 1, voices[0][4410:8820], {"X-Sori-Cues": json.dumps(
        {"text": long, "start": 0.15, "end": 0.2})})
    assert (await http.record("strict"))[1]["state"] == "live"
    sealed = await http.finish("strict")
    assert [c[2] for c in parse_vtt((await http.get(sealed["transcript"])).text)] == ["one", long]
    await http.finish("plain")


async def test_sori_live_transcript(voices: list[bytes], tmp_path: Path,
                                    origin_client: Any) -> None:
    """`sori live INPUT --transcript FILE`: the file's cue times are the input's times."""
    wav = tmp_path / "talk.wav"
    cues = []
    pcm = b""
    for text, voice in zip(SENTENCES, voices, strict=True):
        cues.append({"start": round(seconds(pcm), 3), "end": round(seconds(pcm + voice), 3),
                     "text": text})
        pcm += voice + b"\0\0" * int(0.3 * RATE)
    cues[0]["chapter"] = "Opening"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    (tmp_path / "talk.json").write_text(json.dumps(cues))
    store = LocalStore(tmp_path / "media")
    client, base = await in_process(origin_client, store, live_config(tmp_path))
    http = LiveHttp(client.session, base)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sori", "live", str(wav), "--id", "cli-told", "--url", base,
        "--transcript", str(tmp_path / "talk.json"), "--chunk-ms", "300",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip().splitlines()[-1] == "cli-told"
    status, rec = await http.record("cli-told")
    assert status == 200 and rec["state"] == "ready"
    got = parse_vtt((await http.get(rec["transcript"])).text)
    assert [c[2] for c in got] == SENTENCES
    for (start, end, _), cue in zip(got, cues, strict=True):
        assert abs(start - cue["start"]) <= TOLERANCE and abs(end - cue["end"]) <= TOLERANCE
    chapters = json.loads((await http.get(rec["chapters"])).body)
    assert [c["titles"][0]["title"] for c in chapters] == ["Opening"]
    # a bad transcript file: exit 2, nothing created
    (tmp_path / "bad.vtt").write_text("not a transcript")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sori", "live", str(wav), "--id", "cli-bad", "--url", base,
        "--transcript", str(tmp_path / "bad.vtt"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and b"transcript" in err, err
    assert (await http.record("cli-bad"))[0] == 404
