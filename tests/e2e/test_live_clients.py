"""End to end for live: real players on real live TTS streams from `sori serve`.

espeak-ng speech, converted by ffmpeg to s16le 22050 Hz mono, is pushed in real time
(200 ms chunks, paced by the wall clock, `POST /v1/live/{id}/chunks?seq=N`) into two live
streams at once, one for the HLS clients and one for the DASH clients, for
STREAM_SECONDS; then each stream is ended and sealed.
While they run:

- hls.js (lowLatencyMode, startPosition 0) plays from the first word, then seeks to
  hls.liveSyncPosition and is measured against the PROGRAM-DATE-TIME (Date.now() minus
  hls.playingDate); after the end it must see the ENDLIST and play to the end.
- dash.js (v5, low-latency settings: delay.liveDelay, liveCatchup) plays the dynamic MPD;
  its own getCurrentLiveLatency() is measured; after the end the MPD turns static and
  playback must go on to the end without an error.
- Shaka Player (streaming.lowLatencyMode) plays the HLS master and the MPD.
- ffmpeg reads the live HLS master while it is live.

The browser players run in Debian's Chromium driven by `live_drive.mjs` (playwright-core),
on a bare page (`live_page.html`, no sori player code) served by a small static server in
this module; the players' files come from player/node_modules (hls.js, dash.js) and
tests/e2e/node_modules (shaka-player). Everything runs once per module (about 30 s); each
test asserts one client's results. The driver's full report, with every request each
player made, goes to test-artifacts/live-clients.json, and screenshots next to it.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from live_producer import LiveProducer  # noqa: E402 - the real-time producer
from real_clients import local_env, make_speech, require_tool, serve  # noqa: E402

pytestmark = pytest.mark.e2e

DRIVER = E2E_DIR / "live_drive.mjs"
PAGE = E2E_DIR / "live_page.html"
PLAYER_MODULES = REPO / "player" / "node_modules"
LIBS = {  # URL under /lib/ on the static server -> file (the builds sori's page serves)
    "hls.js": PLAYER_MODULES / "hls.js" / "dist" / "hls.min.js",
    "dash.js": PLAYER_MODULES / "dashjs" / "dist" / "modern" / "umd" / "dash.all.min.js",
    "shaka.js": E2E_DIR / "node_modules" / "shaka-player" / "dist" / "shaka-player.compiled.js",
}

RATE = 22_050
CHUNK_SECONDS = 0.2
STREAM_SECONDS = 14.0
FFMPEG_AFTER = 5.0  # seconds into the stream when ffmpeg opens the live master playlist
HLSJS_AFTER = 3.0  # hls.js opens the stream 3 s in: from the start is then 3 s behind live
JOB_SECONDS = STREAM_SECONDS + 40  # the driver gives up on a player after this
DRIVER_TIMEOUT = JOB_SECONDS + 40
READY_TIMEOUT = 60  # seconds for Chromium to start and every page to load its player

SPEECH = (
    "Good morning. This stream is spoken while it is being made, a few words at a time, "
    "the way a voice assistant talks. Every listener should hear the first word, and a "
    "listener who jumps to the live edge should hear each sentence about a second after it "
    "was spoken. When the speaker stops, the stream becomes an ordinary recording at the "
    "very same address, and every player plays it to its last word."
)


# ---- the page's static server ------------------------------------------------------------


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        route = urllib.parse.urlsplit(self.path).path
        if route == "/live_page.html":
            path, ctype = PAGE, "text/html; charset=utf-8"
        elif route.startswith("/lib/") and route[5:] in LIBS:
            path, ctype = LIBS[route[5:]], "text/javascript"
        else:
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


@contextlib.contextmanager
def _page_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="live-page")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/live_page.html"
    finally:
        server.shutdown()
        server.server_close()


# ---- ffmpeg as a client ------------------------------------------------------------------


def _ffmpeg_reads(url: str, t0: float, result: dict[str, Any]) -> None:
    time.sleep(max(0.0, t0 + FFMPEG_AFTER - time.time()))
    started = time.time()
    try:
        proc = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", url, "-t", "4",
                               "-f", "null", "-"], capture_output=True, text=True, timeout=40)
        result.update(rc=proc.returncode, stderr=proc.stderr)
    except subprocess.TimeoutExpired as e:
        result.update(rc=None, stderr=f"timed out: {e}")
    result.update(seconds=time.time() - started, startedAt=started - t0)


def _read_line(stream: IO[str], timeout: float) -> str | None:
    """One line from `stream`, or None after `timeout` seconds."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0].strip() if got else None


# ---- the run -----------------------------------------------------------------------------


def _pcm(work: Path) -> bytes:
    wav = make_speech(work / "speech.wav", SPEECH, minimum=STREAM_SECONDS + 1)
    raw = work / "speech.pcm"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-f", "s16le",
                    "-ac", "1", "-ar", str(RATE), str(raw)], check=True, timeout=60)
    data = raw.read_bytes()
    assert len(data) >= STREAM_SECONDS * RATE * 2
    return data


@dataclass(frozen=True)
class Job:
    player: str  # live_page.html?player=
    flow: str  # live_drive.mjs's flow
    kind: str  # "hls" (the master playlist of STREAMS["hls"]) or "dash" (the MPD of "dash")
    after: float  # seconds after the first chunk when the player opens the stream
    after_first_segment: bool = False  # and not before the first segment is complete
    options: dict[str, Any] = field(default_factory=dict)  # for live_page.html


# Two streams, several listeners each: the HLS clients (and ffmpeg) on one, the DASH
# clients on the other. (One stream per client would be five encoders besides Chromium on
# a 2-core machine; the point here is the clients.)
STREAMS = ("hls", "dash")
JOBS: dict[str, Job] = {
    "hlsjs": Job("hlsjs", "hlsjs", "hls", HLSJS_AFTER),
    "dashjs": Job("dashjs", "dashjs", "dash", 1.0),
    # Shaka's HLS parser cannot open a live playlist whose only segment is still in
    # progress (test_shaka_hls_joins_during_the_first_segment): "shaka-hls" joins once the
    # first segment is complete, "shaka-hls-early" half a second in shows the bug.
    "shaka-hls": Job("shaka", "shaka", "hls", 1.0, after_first_segment=True),
    "shaka-hls-early": Job("shaka", "shaka", "hls", 0.5),
    "shaka-dash": Job("shaka", "shaka", "dash", 1.0),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every stream and client at once; the driver's report, the producers and ffmpeg."""
    _check_tools()
    require_tool("ffmpeg", "apt-get install ffmpeg (`make demo` does)")
    for name, path in LIBS.items():
        assert path.is_file(), (f"{path} is missing ({name}): run `npm ci` in player/ and in "
                                "tests/e2e (`make test` does)")
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("e2e-live")
    pcm = _pcm(work)
    env = local_env(work / "store")
    with serve(env, work / "serve.log") as origin, _page_server() as page:
        producers = {name: LiveProducer(origin.base, f"live-{name}", pcm, RATE, STREAM_SECONDS,
                                     chunk_seconds=CHUNK_SECONDS)
                     for name in STREAMS}
        for p in producers.values():
            p.create()
        scenario = {
            "page": page, "artifacts": str(ARTIFACTS), "chromium": str(CHROMIUM),
            "streamSeconds": STREAM_SECONDS, "jobSeconds": JOB_SECONDS,
            "jobs": [{"name": name, "player": j.player, "flow": j.flow, "startAfter": j.after,
                      "afterFirstSegment": j.after_first_segment,
                      "url": origin.base + producers[j.kind].created[j.kind],
                      "options": j.options}
                     for name, j in JOBS.items()],
        }
        driver_log = work / "live_drive.log"
        with driver_log.open("w") as err:
            node = subprocess.Popen(["node", str(DRIVER), json.dumps(scenario)], cwd=E2E_DIR,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                    text=True)
        assert node.stdin is not None and node.stdout is not None
        try:
            # Chromium first (it is slow to start on a busy machine), then the streams.
            ready = _read_line(node.stdout, READY_TIMEOUT)
            assert ready == "ready", (f"live_drive.mjs did not get ready ({ready!r}):\n"
                                      f"{driver_log.read_text()[-3000:]}")
            t0 = time.time() + 0.3
            for p in producers.values():
                p.start(t0)
            ffmpeg: dict[str, Any] = {}
            reader = threading.Thread(target=_ffmpeg_reads, daemon=True, name="ffmpeg-reader",
                                      args=(origin.base + producers["hls"].created["hls"],
                                            t0, ffmpeg))
            reader.start()
            try:
                out, _ = node.communicate(json.dumps({"t0": int(t0 * 1000)}) + "\n",
                                          timeout=DRIVER_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"live_drive.mjs did not finish within {DRIVER_TIMEOUT} s:\n"
                            f"{driver_log.read_text()[-3000:]}", pytrace=False)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
        for p in producers.values():
            p.join()
        reader.join(timeout=60)
        log = (work / "serve.log").read_text(errors="replace")
    stderr = driver_log.read_text(errors="replace")
    lines = out.strip().splitlines()
    assert node.returncode == 0 and lines, (
        f"live_drive.mjs exited {node.returncode}\nstdout:\n{out[-3000:]}\n"
        f"stderr:\n{stderr[-3000:]}")
    report: dict[str, Any] = json.loads(lines[-1])
    report["producers"] = {name: {"late": [round(x, 3) for x in p.late],
                                  "rtt": [round(x, 3) for x in p.rtt], "errors": p.errors,
                                  "sealed": p.sealed.get("state"),
                                  "duration": p.sealed.get("duration"),
                                  "silence": p.sealed.get("live", {}).get("silence_seconds")}
                           for name, p in producers.items()}
    report["ffmpeg"] = ffmpeg
    report["driver_log"] = stderr.splitlines()
    (ARTIFACTS / "live-clients.json").write_text(json.dumps(report, indent=1))
    return {"report": report, "producers": producers, "ffmpeg": ffmpeg,
            "origin_errors": _origin_errors(log), "load": os.getloadavg()}


def _origin_errors(log: str) -> list[str]:
    """ERROR lines and 5xx answers (but 503, a blocking reload held too long or a stream
    being sealed, which players retry) in the origin's log."""
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                if json.loads(line).get("status", 0) >= 500 and '"status":503' not in line:
                    found.append(line)
        elif " ERROR " in line or line.startswith("Traceback"):
            found.append(line)
    return found


def _health(run: dict[str, Any]) -> str:
    """How the run went for the origin and the machine: a player's failure under a busy
    machine reads differently."""
    rows = [f"  load average at the end: {' '.join(f'{x:.1f}' for x in run['load'])}"]
    for name, p in run["producers"].items():
        rows.append(f"  stream {name}: chunks late by up to {max(p.late, default=0):.2f} s, "
                    f"POSTs took up to {max(p.rtt, default=0):.2f} s, "
                    f"{p.sealed.get('live', {}).get('silence_seconds')} s of silence inserted, "
                    f"sealed {p.sealed.get('duration')} s")
    return "\n".join(rows)


# ---- assertions ------------------------------------------------------------------------------


def _requests_tail(job: dict[str, Any], n: int = 25) -> str:
    bad = [r for r in job["requests"] if not (isinstance(r.get("status"), int)
                                               and r["status"] < 400)]
    tail = job["requests"][-n:]
    fmt = lambda r: f"    +{r['t']}ms {r.get('method', '')} {r['url']} -> {r.get('status')} ({r.get('ms')} ms)"  # noqa: E731
    return ("  failed or erroneous requests:\n" + "\n".join(map(fmt, bad[:25])) +
            "\n  last requests:\n" + "\n".join(map(fmt, tail)))


def _assert_job(run: dict[str, Any], name: str, needed: list[str],
                allowed: Callable[[dict[str, Any]], bool] = lambda e: False,
                leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The job's checks all passed (but those named from `leave_out`, asserted
    elsewhere), and it met no fatal error but those `allowed`."""
    job: dict[str, Any] = run["report"]["jobs"][name]
    failed = [c for c in job["checks"] if not c["ok"] and not c["name"].startswith(leave_out)]
    names = [c["name"] for c in job["checks"]]
    context = (f"\n{_health(run)}\n  marks: {json.dumps(job['marks'])[:3000]}\n  player errors: "
               f"{json.dumps(job['errors'])[:2000]}\n  page errors: {job['pageErrors'][:5]}"
               f"\n  console: {job['consoleErrors'][-10:]}\n{_requests_tail(job)}")
    report = "\n".join(f"  FAIL {c['name']}: {json.dumps(c['detail'])[:1200]}" for c in failed)
    assert not failed, f"{name}: {len(failed)} of {len(job['checks'])} checks failed:\n{report}{context}"
    for check in needed:
        assert any(n.startswith(check) for n in names), f"{name}: the driver did not run {check!r}"
    fatal = [e for e in job["fatal"] if not allowed(e)]
    assert not fatal, f"{name}: fatal player errors: {fatal}{context}"
    assert not job["pageErrors"], f"{name}: uncaught errors in the page: {job['pageErrors']}"
    producer = _producer(run, name)
    assert not producer.errors, f"{name}: the producer failed: {producer.errors}"
    assert producer.sealed.get("state") == "ready", f"{name}: not sealed: {producer.sealed}"
    return job


def _producer(run: dict[str, Any], name: str) -> LiveProducer:
    producer: LiveProducer = run["producers"][JOBS[name].kind]
    return producer


def _past_the_end(error: dict[str, Any], producer: LiveProducer) -> bool:
    """A Shaka error that is the 404 of a segment or part starting at or after the end of
    the sealed stream, asked for after the stream ended. DASH: with $Number$ addressing a
    client holding the dynamic MPD computes the next segment from the clock
    (availabilityTimeOffset early) until its next MPD refresh (minimumUpdatePeriod, one
    segment) shows the stream static; no MPD can say earlier that a segment will never
    come. HLS: the part after the last one, asked for before the client reloads the
    playlist and finds the ENDLIST. The origin's 404 is the right answer (and no cache
    keeps it); Shaka reports each failed try (RECOVERABLE while it can disable a
    rendition, CRITICAL for the last one) and retries until it rereads the manifest."""
    sealed = producer.sealed
    m = re.search(r'/seg_(\d{5})(?:\.(\d+))?\.m4s",404,', error.get("data", ""))
    if error.get("code") != 1001 or m is None or error["wall"] / 1000 < producer.ended_at:
        return False
    start = ((int(m.group(1)) - 1) * sealed["segment_duration"]
             + int(m.group(2) or 0) * sealed["live"]["part_duration"])
    return bool(start >= sealed["duration"] - 0.01)


def test_origin_stayed_healthy(run: dict[str, Any]) -> None:
    """No error in the origin's log; it took every chunk at once, and each stream was
    sealed with the audio pushed plus the silence it says it inserted."""
    assert not run["origin_errors"], "the origin logged errors:\n" + "\n".join(run["origin_errors"][:20])
    for name, p in run["producers"].items():
        assert not p.errors, f"{name}: {p.errors}"
        assert p.sealed["state"] == "ready", p.sealed
        rtt = sorted(p.rtt)
        assert rtt[len(rtt) // 2] < 0.05, f"{name}: chunks were slow to be taken:\n{_health(run)}"
        # (Silence is inserted when a chunk comes late: on a busy machine this process can
        # be held up for a moment, and then it is more than the few tenths of a second
        # that pad the end to a whole part.)
        live = p.sealed["live"]
        silence = live["silence_seconds"] + live["end_padding_seconds"]
        assert abs(p.sealed["duration"] - (STREAM_SECONDS + silence)) < 0.3, (
            f"{name}: sealed {p.sealed['duration']} s for {STREAM_SECONDS} s of audio and "
            f"{silence} s of silence:\n{_health(run)}")


def test_hlsjs_from_the_start_then_at_the_live_edge_then_to_the_end(run: dict[str, Any]) -> None:
    job = _assert_job(run, "hlsjs", [
        "playback starts", "starts from the beginning", "time advances",
        "latency at the live edge", "hls.js sees the ENDLIST", "after the end, playback reaches"])
    # From the start it played HLSJS_AFTER seconds behind live; at the edge it is below 2.5 s.
    assert job["marks"]["latencyBeforeSeek"] > HLSJS_AFTER - 0.5, job["marks"]
    for shot in ("live-hlsjs-from-start", "live-hlsjs-at-live-edge"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 1000


def test_dashjs_low_latency_then_static(run: dict[str, Any]) -> None:
    job = _assert_job(run, "dashjs", [
        "playback starts", "time advances", "dash.js reports a live latency",
        "after the end dash.js takes the MPD as static", "after the end, playback reaches"])
    assert not job["errors"], job["errors"]
    assert (ARTIFACTS / "live-dashjs-playing.png").stat().st_size > 1000


def test_shaka_hls_low_latency(run: dict[str, Any]) -> None:
    producer = _producer(run, "shaka-hls")
    job = _assert_job(run, "shaka-hls", ["playback starts", "time advances", "after the end"],
                      allowed=lambda e: _past_the_end(e, producer))
    errors = [e for e in job["errors"] if not _past_the_end(e, producer)]
    assert not errors, f"Shaka reported errors: {errors}"
    assert (ARTIFACTS / "live-shaka-hls.png").stat().st_size > 1000


def test_shaka_dash_low_latency_while_live(run: dict[str, Any]) -> None:
    producer = _producer(run, "shaka-dash")
    # (What comes after the end is test_shaka_dash_after_the_mpd_turns_static.)
    job = _assert_job(run, "shaka-dash", ["playback starts", "time advances"],
                      allowed=lambda e: e["wall"] / 1000 >= producer.ended_at,
                      leave_out=("after the end", "driver ran to the end", "the page still answers"))
    live = [e for e in job["errors"] if e["wall"] / 1000 < producer.ended_at]
    assert not live, f"Shaka reported errors while the stream was live: {live}"
    assert (ARTIFACTS / "live-shaka-dash.png").stat().st_size > 1000


# Shaka keeps a stream's segment index across MPD updates. With a live MPD addressed by
# @duration it could not take the sealed MPD's SegmentTimeline (TypeError:
# appendTemplateInfo is not a function); the live MPD lists its segments in a timeline too
# (manifests/dash_live.py), and this test proves that the end of the stream now plays.
def test_shaka_dash_after_the_mpd_turns_static(run: dict[str, Any]) -> None:
    producer = _producer(run, "shaka-dash")
    job = _assert_job(run, "shaka-dash", ["after the end"],
                      allowed=lambda e: _past_the_end(e, producer))
    errors = [e for e in job["errors"] if not _past_the_end(e, producer)]
    assert not errors, f"Shaka reported errors: {errors}"


# Shaka 5.2.12 guesses the mime type from a segment's URI; on a playlist whose only segment
# was still in progress (parts only) that URI was undefined and player.load() failed. The
# first segment is one part and the first playlist waits for it (packager.live.plan,
# origin.live.serving), so a player joining at once finds a whole segment.
def test_shaka_hls_joins_during_the_first_segment(run: dict[str, Any]) -> None:
    _assert_job(run, "shaka-hls-early", ["playback starts", "time advances"])


def test_ffmpeg_reads_the_live_hls(run: dict[str, Any]) -> None:
    ff = run["ffmpeg"]
    assert ff.get("rc") == 0, f"ffmpeg exited {ff.get('rc')}:\n{ff.get('stderr', '')[-3000:]}"
    # It opened the stream while it was live and decoded 4 s of AAC.
    assert ff["startedAt"] + ff["seconds"] < STREAM_SECONDS, ff
    err = ff["stderr"]
    assert re.search(r"Stream #\d+:\d+.*Audio: aac", err), err[-2000:]
    times = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", err)
    assert times, err[-2000:]
    h, m, s = times[-1]
    assert int(h) * 3600 + int(m) * 60 + float(s) >= 3.9, err[-2000:]
    assert re.search(r"audio:\s*\d+\s*[kKM]i?B", err), err[-2000:]
