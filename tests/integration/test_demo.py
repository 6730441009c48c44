"""`sori demo` as a user runs it: makes and packages the spoken sample, prints the URL,
serves it, stops cleanly on SIGTERM, and reuses the asset the second time."""

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

import pytest

SORI = [sys.executable, "-m", "sori"]
START_TIMEOUT = 180.0  # packaging ~50 s of speech on a slow machine
STOP_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Demo:
    def __init__(self, tmp: Path, port: int) -> None:
        env = {**os.environ, "SORI_STORAGE_ROOT": str(tmp / "media"),
               "SORI_ORIGIN_UPLOAD_DIR": str(tmp / "uploads"), "SORI_STORAGE_BACKEND": "local"}
        env.pop("SORI_CONFIG", None)
        self.port = port
        self.proc = subprocess.Popen([*SORI, "demo", "--port", str(port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
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
        assert demo.stop() < STOP_TIMEOUT
    finally:
        demo.kill()
    record = json.loads((tmp_path / "media" / "demo" / "asset.json").read_text())
    version = record["version"]

    # The second run reuses the ready asset: no packaging, same version, quick start.
    again = Demo(tmp_path, _free_port())
    try:
        t0 = time.monotonic()
        url = again.wait_for_url()
        assert time.monotonic() - t0 < 30
        status, body = again.get(url + "v1/assets/demo")
        assert status == 200 and json.loads(body)["version"] == version
        again.stop()
    finally:
        again.kill()
    assert any("reusing" in line for line in again.stderr)
