"""`sori demo` as a user runs it: makes and packages the spoken sample, prints the URL,
serves it, stops cleanly on SIGTERM, and reuses the asset the second time. Alongside, the
live TTS stream `live-demo` (sori.demo_live): listed as "live" with an LL-HLS EVENT playlist
with parts while espeak-ng speaks, then sealed into a VOD asset; the next run replaces it,
and a stop in mid-stream still exits cleanly with the stream sealed."""

from __future__ import annotations

import json
import os
import queue
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
               "SORI_ORIGIN_UPLOAD_DIR": str(tmp / "uploads"), "SORI_STORAGE_BACKEND": "local"}
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

    def playlists(self, asset: dict[str, Any]) -> list[str]:
        """The text of every media playlist of the asset's multivariant playlist."""
        master_url = f"http://127.0.0.1:{self.port}" + asset["hls"]
        status, master = self.get(master_url)
        assert status == 200, master[:300]
        uris = parse_multivariant(master.decode()).media_playlist_uris
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
        page = f"{url}?asset={LIVE_ID}"
        assert any(page in line and "LIVE" in line for line in demo.stdout), demo.stdout
        # ...then sealed into a VOD asset at the same URLs.
        sealed = demo.wait_for_sealed()
        assert sealed["hls"] == live["hls"] and sealed["duration"] >= 20, sealed
        for text in demo.playlists(sealed):
            pl = check_vod_media(text)
            assert pl.ended and not pl.preload_hints
        assert any("sealed" in line and page in line for line in demo.stdout), demo.stdout
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



def _has_no_live_flag() -> bool:
    help_text = subprocess.run([*SORI, "demo", "--help"], capture_output=True, text=True,
                               check=True).stdout
    return "--no-live" in help_text


@pytest.mark.slow
def test_demo_no_live_serves_without_a_live_stream(tmp_path: Path) -> None:
    if not _has_no_live_flag():
        pytest.skip("sori demo has no --no-live flag yet (sori/cli.py)")
    demo = Demo(tmp_path, _free_port(), "--no-live")
    try:
        demo.wait_for_url()
        assert demo.get_json("/v1/assets/demo")["state"] == "ready"
        time.sleep(2.0)  # long enough for a live stream to have been created
        assert demo.listed(LIVE_ID) is None
        assert demo.stop() < STOP_TIMEOUT
    finally:
        demo.kill()
    assert not any("LIVE" in line for line in demo.stdout), demo.stdout
