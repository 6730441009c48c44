"""End to end, issue 12: LL-HLS plays in Chromium (hls.js, lowLatencyMode) through the
shipped nginx edge (deploy/nginx, rendered as tests/integration/edge_support.py does) over
HTTP/2 with TLS (a self-signed certificate made here; Chromium with
--ignore-certificate-errors), while the stream is ingested on one origin replica and the
edge's upstream is the other replica: every playlist, blocking reload and part the player
gets went edge -> replica B -> (peer) -> replica A, the owner.

Same driver and page as test_live_clients.py (live_drive.mjs, flow "hlsjs": from the
start, then at the live edge, then to the end after the seal).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_live_clients import (
    CHUNK_SECONDS,
    DRIVER,
    DRIVER_TIMEOUT,
    HLSJS_AFTER,
    JOB_SECONDS,
    LIBS,
    RATE,
    READY_TIMEOUT,
    STREAM_SECONDS,
    _assert_job,
    _page_server,
    _pcm,
    _read_line,
)
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from edge_support import render_edge, self_signed  # noqa: E402
from live_producer import LiveProducer  # noqa: E402
from real_clients import free_port, local_env, nginx, serve  # noqa: E402

pytestmark = pytest.mark.e2e


def test_hlsjs_plays_a_live_stream_through_the_edge_over_http2_from_the_other_replica(
        tmp_path: Path) -> None:
    _check_tools()
    for name, path in LIBS.items():
        assert path.is_file(), f"{path} is missing ({name}): `make test` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    pcm = _pcm(tmp_path)
    env = {**local_env(tmp_path / "store"), "SORI_ORIGIN_UPLOAD_DIR": str(tmp_path / "up"),
           "SORI_ORIGIN_WORKERS": "1"}
    cert, key = self_signed(tmp_path)
    edge_dir = tmp_path / "edge"
    port, tls_port = free_port(), free_port()
    with serve(env, tmp_path / "a.log") as a, serve(env, tmp_path / "b.log") as b:
        edge = render_edge(edge_dir, origin_port=b.port, port=port, tls_port=tls_port,
                           cert=cert, key=key)
        with nginx(edge_dir, edge.http_block, port, ready_path="/healthz"), \
                _page_server() as page:
            producer = LiveProducer(a.base, "live-edge", pcm, RATE, STREAM_SECONDS,
                                    chunk_seconds=CHUNK_SECONDS)
            producer.create()  # on replica A: A owns the stream
            url = f"https://localhost:{tls_port}{producer.created['hls']}"
            scenario: dict[str, Any] = {
                "page": page, "artifacts": str(ARTIFACTS), "chromium": str(CHROMIUM),
                "streamSeconds": STREAM_SECONDS, "jobSeconds": JOB_SECONDS,
                "chromiumArgs": ["--ignore-certificate-errors"],
                "jobs": [{"name": "hlsjs-edge", "player": "hlsjs", "flow": "hlsjs",
                          "startAfter": HLSJS_AFTER, "afterFirstSegment": False,
                          "url": url, "options": {}}],
            }
            log = tmp_path / "live_drive.log"
            with log.open("w") as err:
                node = subprocess.Popen(["node", str(DRIVER), json.dumps(scenario)],
                                        cwd=E2E_DIR, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=err, text=True)
            assert node.stdin is not None and node.stdout is not None
            try:
                ready = _read_line(node.stdout, READY_TIMEOUT)
                assert ready == "ready", f"driver not ready: {log.read_text()[-3000:]}"
                t0 = time.time() + 0.3
                producer.start(t0)
                out, _ = node.communicate(json.dumps({"t0": int(t0 * 1000)}) + "\n",
                                          timeout=DRIVER_TIMEOUT)
            finally:
                if node.poll() is None:
                    node.kill()
                    node.wait()
            producer.join()
        edge_log = edge.access_log.read_text(errors="replace")
        a_log = _player_requests(tmp_path / "a.log")
        b_log = _player_requests(tmp_path / "b.log")
    lines = out.strip().splitlines()
    assert node.returncode == 0 and lines, f"driver exited {node.returncode}: {out[-2000:]}"
    report = json.loads(lines[-1])
    (ARTIFACTS / "live-edge.json").write_text(json.dumps(report, indent=1))
    run = {"report": report, "producers": {"hls": producer}, "ffmpeg": {},
           "origin_errors": [], "load": (0.0, 0.0, 0.0)}
    import test_live_clients

    test_live_clients.JOBS["hlsjs-edge"] = test_live_clients.JOBS["hlsjs"]
    _assert_job(run, "hlsjs-edge", [
        "playback starts", "starts from the beginning", "time advances",
        "latency at the live edge", "hls.js sees the ENDLIST", "after the end, playback reaches"])
    # the player's requests came over HTTP/2 through the edge, blocking reloads among
    # them, and replica B (not the owner) forwarded the playlists to A: the player never
    # reaches A but through B, so every playlist A answered the browser came that way
    assert "/assets/live-edge/" in edge_log and "HTTP/2.0" in edge_log, edge_log[-2000:]
    assert "index.m3u8?_HLS_msn=" in edge_log, edge_log[-2000:]
    b_playlists = [p for p in b_log if p.endswith("/index.m3u8")]
    a_playlists = [p for p in a_log if p.endswith("/index.m3u8")]
    assert b_playlists and a_playlists, (b_log[-20:], a_log[-20:])


def _player_requests(log: Path) -> list[str]:
    """Paths of the browser's requests in an origin's access log (the origin logs the
    path without its query; the edge passes the browser's User-Agent on, and so does a
    forwarding replica)."""
    paths = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"ts":'):
            entry = json.loads(line)
            if "HeadlessChrome" in str(entry.get("ua")):
                paths.append(str(entry["path"]))
    return paths
