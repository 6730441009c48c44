"""`sori demo` as a user runs it: makes and packages the spoken sample, prints the URL,
serves it, stops cleanly on SIGTERM, and reuses the asset the second time. The sample comes
with what a TTS pipeline knows: captions (an HLS subtitles rendition), the transcript with
every sentence of the script in order, on the pauses of the packaged audio, and a chapter
per paragraph; and the data-saver rung. A `demo` of an older run without a transcript is
packaged again once. Alongside, the live TTS stream `live-demo` (sori.demo_live): listed as
"live" with an LL-HLS EVENT playlist with parts while espeak-ng speaks, then sealed into a
VOD asset with the spoken sentences as its transcript; the next run replaces it, and a stop
in mid-stream still exits cleanly with the stream sealed."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from llhls_rules import check_live_media, check_vod_media, parse_multivariant

from manifests import layout
from packager.transcript.parse import parse as parse_transcript
from sori.demo import DEMO_PARAGRAPHS, sentences
from sori.demo_live import LIVE_CHAPTERS, LIVE_SENTENCES

SORI = [sys.executable, "-m", "sori"]
START_TIMEOUT = 180.0  # packaging ~50 s of speech on a slow machine
STOP_TIMEOUT = 10.0
LIVE_ID = "live-demo"
LIVE_TIMEOUT = 90.0  # from the URL to the sealed live stream (about 15 s on this machine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Demo:
    def __init__(self, tmp: Path, port: int, *args: str) -> None:
        env = {**os.environ, "SORI_STORAGE_ROOT": str(tmp / "media"),
               "SORI_ORIGIN_UPLOAD_DIR": str(tmp / "uploads"), "SORI_STORAGE_BACKEND": "local",
               "SORI_ANALYTICS_DATABASE": str(tmp / "analytics.sqlite3")}
        env.pop("SORI_CONFIG", None)
        self.port = port
        self.proc = subprocess.Popen([*SORI, "demo", "--port", str(port), *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("sori demo printed no URL in time:\n" + "".join(self.stderr[-30:]))
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"sori demo exited with {self.proc.wait()}:\n"
                            + "".join(self.stderr[-30:]))
            if line.startswith("sori demo: open "):
                url = line.removeprefix("sori demo: open ").strip()
                assert url == f"http://127.0.0.1:{self.port}/"
                return url

    def get(self, url: str, retries: int = 50) -> tuple[int, bytes]:
        """GET, retrying while the server is still binding (the URL comes first)."""
        for _ in range(retries):
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"{url} never answered")

    def get_json(self, path: str) -> Any:
        status, body = self.get(f"http://127.0.0.1:{self.port}{path}")
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def listed(self, asset_id: str) -> dict[str, Any] | None:
        """The asset as GET /v1/assets lists it (None when it is not listed)."""
        assets = self.get_json("/v1/assets")["assets"]
        return next((a for a in assets if a["id"] == asset_id), None)

    def playlists(self, asset: dict[str, Any], kind: str = "AUDIO") -> list[str]:
        """The text of every media playlist of the asset's multivariant playlist: the
        variants' (audio), or those of its EXT-X-MEDIA of TYPE `kind` (SUBTITLES)."""
        master_url = f"http://127.0.0.1:{self.port}" + asset["hls"]
        status, master = self.get(master_url)
        assert status == 200, master[:300]
        mv = parse_multivariant(master.decode())
        uris = [v.uri for v in mv.variants] if kind == "AUDIO" else \
            [m.uri for m in mv.media if m.type == kind and m.uri]
        assert uris, master.decode()
        texts = []
        for uri in uris:
            status, body = self.get(urljoin(master_url, uri))
            assert status == 200, (uri, body[:300])
            texts.append(body.decode())
        return texts

    def wait_for_live(self, *, not_version: str | None = None) -> dict[str, Any]:
        """The live stream as listed while it is live (a version other than `not_version`)."""
        deadline = time.monotonic() + LIVE_TIMEOUT
        while time.monotonic() < deadline:
            asset = self.listed(LIVE_ID)
            if asset is not None and asset["state"] == "live" and (
                    not_version is None or asset.get("version") != not_version):
                return asset
            if self.proc.poll() is not None:
                pytest.fail(f"sori demo exited with {self.proc.returncode}")
            time.sleep(0.1)
        pytest.fail(f"{LIVE_ID} was never listed live:\n" + "".join(self.stderr[-30:]))

    def wait_for_sealed(self) -> dict[str, Any]:
        deadline = time.monotonic() + LIVE_TIMEOUT
        while time.monotonic() < deadline:
            asset = self.listed(LIVE_ID)
            assert asset is not None and asset["state"] in ("live", "ready"), asset
            if asset["state"] == "ready":
                return asset
            time.sleep(0.2)
        pytest.fail(f"{LIVE_ID} was not sealed in time:\n" + "".join(self.stderr[-30:]))

    def stop(self) -> float:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"sori demo did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
        assert code == 0, "".join(self.stderr[-30:])
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _silences(url: str) -> list[tuple[float, float]]:
    """The pauses ffmpeg's silencedetect hears in the media at `url` (start, end), seconds."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", url, "-af",
                           "silencedetect=noise=-50dB:duration=0.3", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120, check=True)
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.]+)", done.stderr)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", done.stderr)]
    return list(zip(starts, ends, strict=False))


def check_demo_text(demo: Demo, asset: dict[str, Any]) -> None:
    """The sample's captions, transcript and chapters, as a TTS pipeline knows them: every
    sentence of the script one cue, in order, each pause between them a pause in the
    packaged audio (within 0.1 s), a chapter where each paragraph starts."""
    base = f"http://127.0.0.1:{demo.port}"
    assert asset["transcript"] and asset["transcript_text"] and asset["chapters"], asset
    script = sentences()
    status, vtt = demo.get(base + asset["transcript"])
    assert status == 200, vtt[:300]
    cues = parse_transcript(vtt, "transcript.vtt").cues
    assert [c.text for c in cues] == [text for text, _ in script]
    assert all(a.end < b.start for a, b in zip(cues, cues[1:], strict=False))
    assert cues[-1].end <= asset["duration"] * 1000
    status, txt = demo.get(base + asset["transcript_text"])
    assert status == 200 and [line for line in txt.decode().splitlines() if line.strip()] \
        == [text for text, _ in script]
    status, body = demo.get(base + asset["chapters"])
    assert status == 200, body[:300]
    chapters = json.loads(body)  # Apple's HLS chapters JSON
    assert [c["titles"][0]["title"] for c in chapters] == [t for t, _ in DEMO_PARAGRAPHS]
    assert chapters[0]["start-time"] == 0
    firsts = [c.start / 1000 for c, (_, title) in zip(cues, script, strict=True) if title]
    assert [c["start-time"] for c in chapters[1:]] == firsts[1:]
    # The multivariant playlist: a subtitles rendition on every variant, and the Opus rung.
    status, master = demo.get(base + asset["hls"])
    text = master.decode()
    assert "TYPE=SUBTITLES" in text and 'DATA-ID="com.apple.hls.chapters"' in text, text
    variants = [ln for ln in text.splitlines() if ln.startswith("#EXT-X-STREAM-INF")]
    assert variants and all('SUBTITLES="subs"' in v for v in variants), text
    assert layout.DATA_SAVER_RENDITION in [r["id"] for r in asset["renditions"]]
    assert any('CODECS="opus"' in v for v in variants), text
    # In sync: the packaged audio is silent across each pause between two cues.
    heard = _silences(base + asset["download"])
    for a, b in zip(cues, cues[1:], strict=False):
        gap = (a.end / 1000, b.start / 1000)
        assert any(s0 <= gap[0] + 0.1 and s1 >= gap[1] - 0.1 for s0, s1 in heard), \
            (a.text, b.text, gap, heard)


def check_live_text(demo: Demo, sealed: dict[str, Any]) -> None:
    """The sealed live stream's transcript: the sentences spoken, in order, and its chapters
    in the language the producer named."""
    base = f"http://127.0.0.1:{demo.port}"
    assert sealed.get("transcript") and sealed.get("chapters"), sealed
    status, vtt = demo.get(base + sealed["transcript"])
    assert status == 200, vtt[:300]
    cues = parse_transcript(vtt, "transcript.vtt").cues
    assert [c.text for c in cues] == list(LIVE_SENTENCES)
    status, body = demo.get(base + sealed["chapters"])
    assert status == 200
    titles = [c["titles"][0] for c in json.loads(body)]
    assert [t["title"] for t in titles] == [LIVE_CHAPTERS[n] for n in sorted(LIVE_CHAPTERS)]
    assert {t["language"] for t in titles} == {"en"}  # sent with the cues


@pytest.mark.slow
def test_demo_packages_serves_and_stops(tmp_path: Path) -> None:
    demo = Demo(tmp_path, _free_port())
    try:
        url = demo.wait_for_url()
        status, body = demo.get(url + "v1/assets/demo")
        assert status == 200, body
        asset = json.loads(body)
        assert asset["id"] == "demo" and asset["state"] == "ready"
        assert asset["kind"] == "audio" and asset["duration"] >= 30
        assert asset["title"]
        status, master = demo.get(url.rstrip("/") + asset["hls"])
        assert status == 200 and master.startswith(b"#EXTM3U")
        check_demo_text(demo, asset)
        status, _page = demo.get(url)
        assert status in (200, 404)  # the player page, when player/ is installed

        # The live TTS stream: listed live, LL-HLS EVENT playlists with parts while it is...
        live = demo.wait_for_live()
        assert live["kind"] == "audio" and live["title"]
        for text in demo.playlists(live):
            pl = check_live_media(text, audio=True)
            assert pl.playlist_type == "EVENT" and not pl.ended
            assert pl.part_target and pl.parts, text
            assert pl.preload_hints, text
        # ...with live captions: a WebVTT subtitles playlist growing with the audio.
        for text in demo.playlists(live, "SUBTITLES"):
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-ENDLIST" not in text, text
        page = f"{url}?asset={LIVE_ID}"
        assert any(page in line and "LIVE" in line for line in demo.stdout), demo.stdout
        # ...then sealed into a VOD asset at the same URLs.
        sealed = demo.wait_for_sealed()
        assert sealed["hls"] == live["hls"] and sealed["duration"] >= 20, sealed
        for text in demo.playlists(sealed):
            pl = check_vod_media(text)
            assert pl.ended and not pl.preload_hints
        for text in demo.playlists(sealed, "SUBTITLES"):
            assert "#EXT-X-ENDLIST" in text and ".vtt" in text, text
        assert any("sealed" in line and page in line for line in demo.stdout), demo.stdout
        check_live_text(demo, sealed)
        assert demo.stop() < STOP_TIMEOUT
    finally:
        demo.kill()
    record = json.loads((tmp_path / "media" / "demo" / "asset.json").read_text())
    version = record["version"]
    live_record = json.loads((tmp_path / "media" / LIVE_ID / "asset.json").read_text())
    assert live_record["state"] == "ready"

    # The second run reuses the ready asset: no packaging, same version, quick start. The
    # live stream of the first run is replaced by a new one; stopping the demo in the middle
    # of it exits cleanly and the origin seals what it had.
    again = Demo(tmp_path, _free_port())
    try:
        t0 = time.monotonic()
        url = again.wait_for_url()
        assert time.monotonic() - t0 < 30
        status, body = again.get(url + "v1/assets/demo")
        assert status == 200 and json.loads(body)["version"] == version
        again.wait_for_live(not_version=live_record["version"])
        assert again.stop() < STOP_TIMEOUT
    finally:
        again.kill()
    assert any("reusing" in line for line in again.stderr)
    assert any(f"removed the live asset {LIVE_ID!r}" in line for line in again.stderr)
    replaced = json.loads((tmp_path / "media" / LIVE_ID / "asset.json").read_text())
    assert replaced["version"] != live_record["version"]
    assert replaced["state"] == "ready", replaced



@pytest.mark.slow
def test_demo_no_live_serves_without_a_live_stream_and_renews_an_older_demo(
        tmp_path: Path) -> None:
    """`--no-live`: no live stream. The store holds a `demo` from before transcripts (a
    short tone packaged without one): this run packages the spoken sample again, once."""
    tone = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=330:duration=3", str(tone)], check=True, timeout=60)
    env = {**os.environ, "SORI_STORAGE_ROOT": str(tmp_path / "media"),
           "SORI_STORAGE_BACKEND": "local"}
    env.pop("SORI_CONFIG", None)
    subprocess.run([*SORI, "package", str(tone), "--id", "demo", "--title", "Older demo"],
                   env=env, check=True, capture_output=True, timeout=120)
    older = json.loads((tmp_path / "media" / "demo" / "asset.json").read_text())
    assert older["state"] == "ready" and not older.get("transcript")

    demo = Demo(tmp_path, _free_port(), "--no-live")
    try:
        demo.wait_for_url()
        asset = demo.get_json("/v1/assets/demo")
        assert asset["state"] == "ready" and asset["version"] != older["version"]
        assert asset["title"] != "Older demo"
        check_demo_text(demo, asset)
        time.sleep(2.0)  # long enough for a live stream to have been created
        assert demo.listed(LIVE_ID) is None
        assert demo.stop() < STOP_TIMEOUT
    finally:
        demo.kill()
    assert not any("LIVE" in line for line in demo.stdout), demo.stdout
    assert any("packaging it again" in line for line in demo.stderr), demo.stderr
