"""End to end: captions of a live stream in Chromium, through hls.js and dash.js on the page.

`sori serve` runs over a fresh local store; `sori live talk.wav --transcript talk.json
--realtime` (the CLI, in its own process) pushes espeak-ng sentences in real time with the
text of each sentence, timed by the transcript file. Chromium opens the page on the stream
while it is live, with captions turned on, and plays it from its first word
(captions_live_drive.mjs samples what it shows every 200 ms); then a second stream the same
way with dash.js (the live MPD's text AdaptationSet), and a third one with Shaka on a bare
page (its text shown) over the live MPD. Checked against each sealed asset's transcript.vtt
(the cues at the media time of their audio):

- hls.js finds the stream's subtitles rendition (`subtitleTracks`) and loads it (the page
  selects it, hidden: the page draws captions itself);
- while the stream is live, the engine's text track receives the cues, at the sealed times;
- the caption over the stage is the sentence at the playhead; the transcript panel fills
  as the stream goes, the spoken line highlighted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_live_clients import _page_server
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, SORI, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from real_clients import local_env, serve  # noqa: E402 - shared helpers

pytestmark = pytest.mark.e2e

DRIVER = E2E_DIR / "captions_live_drive.mjs"
ASSET = "live-captioned"
GAP = 0.5  # s of silence between sentences in the file
SENTENCES = [
    "This stream is spoken live, one sentence after another.",
    "Each sentence carries its own text to the origin.",
    "The player shows it over the stage while it is said.",
    "And the transcript grows under the player as the stream goes on.",
]
LAG = 0.3  # s: the page redraws on timeupdate and animation frames
TOLERANCE = 0.01  # s between a cue seen live and the sealed one
ENGINES = ("hls", "dash")


def _talk(work: Path) -> tuple[Path, Path]:
    frames = b""
    cues = []
    rate = 0
    for i, text in enumerate(SENTENCES):
        path = work / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text],
                       check=True, capture_output=True, timeout=60)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            pcm = w.readframes(w.getnframes())
        start = len(frames) / (2 * rate)
        frames += pcm
        cues.append({"start": round(start, 3), "end": round(len(frames) / (2 * rate), 3),
                     "text": text})
        frames += b"\0\0" * int(GAP * rate)
    wav = work / "talk.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    transcript = work / "talk.json"
    transcript.write_text(json.dumps(cues))
    return wav, transcript


def _watch(base: str, env: dict[str, str], wav: Path, transcript: Path,
           engine: str, page: str) -> dict[str, Any]:
    """One live stream pushed by `sori live` while Chromium watches it with `engine`
    (sori's page on hls.js or dash.js, or Shaka on the bare `page`)."""
    asset = f"{ASSET}-{engine}"
    scenario: dict[str, Any] = {"base": base, "id": asset, "chromium": str(CHROMIUM),
                                "artifacts": str(ARTIFACTS), "seconds": 60,
                                "dash": engine == "dash"}
    if engine == "shaka":
        scenario.update(raw="shaka", page=page, url=f"{base}/assets/{asset}/manifest.mpd")
    driver = subprocess.Popen(["node", str(DRIVER), json.dumps(scenario)], cwd=E2E_DIR,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer = subprocess.run(
        [str(SORI), "live", str(wav), "--id", asset, "--url", base, "--realtime",
         "--transcript", str(transcript), "--title", f"Captions, live ({engine})"],
        env=env, capture_output=True, text=True, timeout=120)
    out, err = driver.communicate(timeout=120)
    assert producer.returncode == 0, producer.stderr
    lines = out.strip().splitlines()
    assert driver.returncode == 0 and lines, f"driver exited {driver.returncode}:\n{err[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    (ARTIFACTS / f"captions-live-{engine}.json").write_text(json.dumps(result, indent=2))
    assert "error" not in result, result["error"] + "\n" + err[-2000:]
    with urllib.request.urlopen(f"{base}/v1/assets/{asset}", timeout=5) as res:
        record = json.load(res)
    with urllib.request.urlopen(base + record["transcript"], timeout=5) as res:
        vtt = res.read().decode()
    rung = record["renditions"][0]["id"]
    with urllib.request.urlopen(f"{base}/assets/{asset}/v/{record['version']}/{rung}/index.m3u8",
                                timeout=5) as res:
        segments = len(re.findall(r"^seg_\d{5}\.m4s$", res.read().decode(), re.M))
    return {"engine": engine, "result": result, "record": record, "cues": _parse_vtt(vtt),
            "segments": segments}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("captions-live")
    wav, transcript = _talk(work)
    env = local_env(work / "store")
    # The three streams at once (each its own producer and browser): they are real time,
    # one after another they cost a minute of the suite.
    with serve(env, work / "serve.log") as origin, _page_server() as page, \
            ThreadPoolExecutor(3) as pool:
        jobs = {engine: pool.submit(_watch, origin.base, env, wav, transcript, engine, page)
                for engine in (*ENGINES, "shaka")}
        yield {engine: job.result() for engine, job in jobs.items()}


@pytest.fixture(params=ENGINES)
def watched(request: pytest.FixtureRequest, streams: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return streams[request.param]


def _parse_vtt(text: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in text.split("\n\n"):
        lines = block.strip().split("\n")
        at = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if at is None:
            continue
        a, b = (x.strip() for x in lines[at].split("-->"))
        cues.append((_ts(a), _ts(b), "\n".join(lines[at + 1:])))
    return cues


def _ts(value: str) -> float:
    h, m, s = value.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _at(cues: list[tuple[float, float, str]], t: float) -> str:
    return next((text for start, end, text in cues if start <= t < end), "")


def _live(watched: dict[str, Any]) -> list[dict[str, Any]]:
    """The samples taken while the page still played the stream as live."""
    return [s for s in watched["result"]["samples"] if s["live"]]


def test_the_sealed_transcript_has_every_sentence(watched: dict[str, Any]) -> None:
    assert watched["record"]["state"] == "ready"
    assert [c[2] for c in watched["cues"]] == SENTENCES


def test_the_engine_loads_the_live_subtitles(watched: dict[str, Any]) -> None:
    live = _live(watched)
    assert len(live) >= 10, f"only {len(live)} samples while live"
    engines = {s["engine"] for s in live}  # None until dash.js has loaded
    assert engines - {None} == {f"{watched['engine']}.js"}, engines
    if watched["engine"] == "hls":
        assert any(s["hls"]["subtitleTracks"] >= 1 and s["hls"]["subtitleTrack"] == 0
                   for s in live), [s["hls"] for s in live[:5]]
    # the browser's track is loaded but not drawn by it (the page draws the captions)
    subs = [t for s in live for t in s["tracks"] if t["kind"] == "subtitles"]
    assert subs and all(t["mode"] != "showing" for t in subs)
    seen = {tuple(c) for s in live for t in s["tracks"] if t["kind"] == "subtitles"
            for c in (t["cues"] or [])}
    assert seen, "no cue reached the text track while the stream was live"
    for start, end, text in seen:
        ref = next((c for c in watched["cues"] if c[2] == text), None)
        assert ref is not None, text
        assert abs(start - ref[0]) <= TOLERANCE and abs(end - ref[1]) <= TOLERANCE, \
            ((start, end, text), ref)


def test_the_page_shows_live_captions_at_their_time(watched: dict[str, Any]) -> None:
    """A cue reaches the page once its WebVTT segment is written (after its media segment,
    and after the end of its audio) and hls.js reloads the subtitles playlist (every target
    duration): a listener at the live edge sees it that much late. Once it is there, the
    caption is the sentence at the playhead, at the sealed times."""
    live = _live(watched)
    assert any(s["button"] and s["captions"]["on"] for s in live)
    shown = 0
    for s in live:
        page = [tuple(c) for c in s["captions"]["cues"]]
        for start, end, text in page:
            ref = next(c for c in watched["cues"] if c[2] == text)
            assert abs(start - ref[0]) <= TOLERANCE and abs(end - ref[1]) <= TOLERANCE, (page, ref)
        if s["paused"]:
            continue
        now, before = _at(page, s["t"]), _at(page, s["t"] - LAG)
        assert s["overlay"] in (now, before), (s["t"], s["overlay"], now)
        shown += bool(s["overlay"])
    assert shown >= 5, f"captions shown in only {shown} samples while live"
    # How late each cue reached the page, in playhead seconds after its start (figure in
    # test-artifacts/captions-live-delays.json); bounded by a media segment, the wait for
    # the end of its audio (two target durations at most) and a playlist reload.
    delays = {}
    for start, _end, text in watched["cues"]:
        first = next((s for s in live if any(c[2] == text for c in s["captions"]["cues"])), None)
        if first is not None:
            delays[text] = round(max(0.0, first["t"] - start), 3)
    (ARTIFACTS / f"captions-live-delays-{watched['engine']}.json").write_text(
        json.dumps(delays, indent=2))
    assert len(delays) >= 3, delays
    assert max(delays.values()) <= 2 + 2 * 2 + 2 + 1, delays
    # the transcript panel grows while live, and highlights the line being said
    lines = [s["lines"] for s in live]
    assert lines == sorted(lines) and lines[-1] >= 2, lines
    assert any(s["highlighted"] >= 0 for s in live)


def test_once_sealed_the_page_reads_the_whole_transcript(watched: dict[str, Any]) -> None:
    """The stream ends while the page plays it: the page reads the asset's record again and
    takes its cues from transcript.vtt, every line in the panel."""
    last = watched["result"]["samples"][-1]
    assert not last["live"]
    assert last["captions"]["source"] == "file", last["captions"]
    assert [c[2] for c in last["captions"]["cues"]] == SENTENCES
    assert last["lines"] == len(SENTENCES)


def test_shaka_shows_the_live_text_of_the_mpd(streams: dict[str, dict[str, Any]]) -> None:
    """Shaka (a bare page, default configuration but low latency, text made visible) over
    the live MPD: the cues it adds while the stream is live are the sealed ones."""
    watched = streams["shaka"]
    live = _live(watched)
    assert len(live) >= 10, f"only {len(live)} samples while live"
    assert live[-1]["t"] > 3, "Shaka did not play the stream"
    seen = {tuple(c) for s in live for t in s["tracks"] for c in (t["cues"] or [])}
    assert len(seen) >= 2, "Shaka added no cues while the stream was live"
    for start, end, text in seen:
        ref = next((c for c in watched["cues"] if c[2] == text), None)
        assert ref is not None, text
        assert abs(start - ref[0]) <= TOLERANCE and abs(end - ref[1]) <= TOLERANCE, \
            ((start, end, text), ref)
    assert not watched["result"]["fatal"], watched["result"]["fatal"]


def test_no_errors(watched: dict[str, Any]) -> None:
    """No error but one the origin gives on purpose: a media segment past the end of the
    sealed stream, which dash.js asks for by the clock before it rereads the MPD (a 404 no
    cache keeps, origin/live/serving.py)."""
    result = watched["result"]
    assert not result["pageErrors"], result["pageErrors"]
    past_end = re.compile(r"^404 \S+/seg_(\d{5})\.m4s(\?|$)")
    errors = [e for e in result["consoleErrors"]
              if not ((m := past_end.match(e)) and int(m.group(1)) > watched["segments"])]
    assert not errors, errors
    assert not result["fatal"], result["fatal"]
