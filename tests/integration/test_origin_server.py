"""Running the origin: exposure check, serving until stopped, graceful shutdown, workers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from real_clients import SPEECH, make_speech

from origin.observe import metrics_share
from origin.server import UnsafeConfig, check_exposure, is_loopback, serve_async
from sori.config import Config, ConfigError, OriginConfig, SecurityConfig, StorageConfig
from storage import LocalStore

BIG = 8 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    check_exposure(Config(origin=OriginConfig(host=host)))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_refuses_open_writes_on_a_public_host(host: str) -> None:
    with pytest.raises(UnsafeConfig, match="api_keys"):
        check_exposure(Config(origin=OriginConfig(host=host)))
    check_exposure(Config(origin=OriginConfig(host=host),
                          security=SecurityConfig(api_keys=("k",))))


def test_workers_need_a_fixed_port() -> None:
    with pytest.raises(ConfigError):
        check_exposure(Config(origin=OriginConfig(port=0, workers=2)))


async def test_serves_until_stopped_and_finishes_in_flight_responses(tmp_path: Path) -> None:
    root = tmp_path / "media"
    store = LocalStore(root)
    data = os.urandom(BIG)
    await store.put_bytes("big/v/abc/low/seg_00001.m4s", data, "video/iso.segment")
    await store.put_bytes("big/asset.json", b'{"id": "big"}', "application/json")
    port = _free_port()
    cfg = Config(storage=StorageConfig(root=str(root)),
                 origin=OriginConfig(port=port, cache_object_max=1024, access_log=False))
    stop = asyncio.Event()
    started = asyncio.Event()
    task = asyncio.create_task(serve_async(cfg, stop=stop, started=lambda _a: started.set()))
    await asyncio.wait_for(started.wait(), 10)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200
        async with session.get(f"{base}/assets/big/v/abc/low/seg_00001.m4s") as resp:
            assert resp.status == 200
            first = await resp.content.read(64 * 1024)
            stop.set()  # shut down while the response is in flight
            await asyncio.sleep(0.2)
            rest = await resp.read()
    assert first + rest == data
    await asyncio.wait_for(task, 20)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz"):
            pass


# `sori serve` as a command line, in a process of its own.
SERVE_CODE = ("import sys; from sori.config import load; from origin.server import serve; "
              "sys.exit(serve(load()))")
REPO = Path(__file__).resolve().parents[2]


def _serve_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`sori serve` (origin.server.serve) in its own process, once /healthz answers."""
    env = {**os.environ, **env}
    env.pop("SORI_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-c", SERVE_CODE], env=env,
                            stderr=subprocess.PIPE, cwd=REPO)
    deadline = time.monotonic() + 20
    workers = int(env.get("SORI_ORIGIN_WORKERS", "1"))
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{env['SORI_ORIGIN_PORT']}/healthz",
                                        timeout=2) as r:
                assert r.status == 200
            # With several workers, the first one up answers /healthz while the others may
            # still be starting: wait until /metrics (merged from every live worker's
            # snapshot) shows them all, so the test's requests can reach any of them.
            if workers <= 1 or len(_workers_in_metrics(env["SORI_ORIGIN_PORT"])) >= workers:
                return proc
            raise ConnectionRefusedError("not every worker is up yet")
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)


def _workers_in_metrics(port: str) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        body = r.read().decode()
    return {s.labels["worker"] for fam in text_string_to_metric_families(body)
            for s in fam.samples if "worker" in s.labels}


@contextlib.contextmanager
def _serving(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`sori serve` in its own process for the block; then SIGTERM (unless the block
    stopped it), and it must exit 0."""
    proc = _serve_process(env)
    try:
        yield proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_response_from_the_fast_lane_is_finished_at_shutdown(tmp_path: Path) -> None:
    """A cached object answered by origin/fast_lane.py to a client that reads slowly, and a
    SIGTERM while most of it is still on the server's side: every byte is delivered."""
    root = tmp_path / "media"
    data = os.urandom(BIG)
    key = "big/v/abc/low/seg_00001.m4s"
    store = LocalStore(root)
    asyncio.run(store.put_bytes(key, data, "video/iso.segment"))
    asyncio.run(store.put_bytes("big/asset.json", b'{"id": "big"}', "application/json"))
    port = _free_port()
    with _serving({"SORI_ORIGIN_PORT": str(port), "SORI_STORAGE_ROOT": str(root),
                   "SORI_ORIGIN_CACHE_OBJECT_MAX": str(BIG),
                   "SORI_ORIGIN_ACCESS_LOG": "false"}) as proc:
        url = f"http://127.0.0.1:{port}/assets/{key}"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == data  # now in the cache: the next GET takes the lane
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            sock.connect(("127.0.0.1", port))
            sock.sendall(f"GET /assets/{key} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            received = sock.recv(16 * 1024)
            assert received.startswith(b"HTTP/1.1 200 ")
            proc.send_signal(signal.SIGTERM)  # most of the body is still on the server's side
            time.sleep(0.5)
            sock.settimeout(20)
            while True:
                chunk = sock.recv(256 * 1024)
                if not chunk:
                    break
                received += chunk
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else b""
        head, _, body = received.partition(b"\r\n\r\n")
        assert len(body) == len(data)
        assert body == data


def test_several_workers_share_the_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    with _serving({"SORI_ORIGIN_PORT": str(port), "SORI_ORIGIN_WORKERS": "2",
                   "SORI_STORAGE_ROOT": str(tmp_path / "media"),
                   "SORI_ORIGIN_ACCESS_LOG": "false"}):
        for _ in range(20):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                assert r.status == 200


def _fresh(method: str, port: int, path: str, body: bytes | None = None,
           headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a connection of its own (so the kernel may hand it to any worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@contextlib.contextmanager
def _uploading_on_two_workers(tmp_path: Path, seconds: float) -> Iterator[tuple[int, str, Path]]:
    """`sori serve` with two workers, and an upload of `seconds` of speech as asset
    `talk` being packaged: (port, job id, the speech file). Stopped with SIGTERM after."""
    speech = make_speech(tmp_path / "talk.wav", SPEECH * 3, minimum=seconds)
    port = _free_port()
    with _serving({"SORI_ORIGIN_PORT": str(port), "SORI_ORIGIN_WORKERS": "2",
                   "SORI_STORAGE_ROOT": str(tmp_path / "media"),
                   "SORI_ORIGIN_UPLOAD_DIR": str(tmp_path / "uploads"),
                   "SORI_ORIGIN_ACCESS_LOG": "false"}):
        status, body = _fresh("POST", port, "/v1/assets?id=talk", speech.read_bytes(),
                              {"Content-Type": "audio/wav"})
        assert status == 202, body
        yield port, json.loads(body)["job"]["id"], speech


def test_every_worker_answers_for_a_job_another_one_runs(tmp_path: Path) -> None:
    """Two workers share the port; an upload is packaged by the one that took it. Requests
    about it on connections of their own (the kernel spreads them over both workers) all
    see the job: its state and event stream, 409 for a second upload or a DELETE of the
    asset while it runs, and the job once it has ended (origin.packaging.job_board)."""
    with _uploading_on_two_workers(tmp_path, seconds=30.0) as (port, job_id, speech):
        seen: list[str] = []
        refused: list[tuple[str, int]] = []  # attempts made while the job ran throughout
        deleted = False  # a DELETE that came just after the job ended may go through
        while True:
            status, body = _fresh("GET", port, f"/v1/jobs/{job_id}")
            assert status == 200, body  # never "no job" from the other worker
            state = json.loads(body)["state"]
            seen.append(state)
            if state in ("done", "failed"):
                break
            for method, path, data in (("POST", "/v1/assets?id=talk", speech.read_bytes()[:4096]),
                                       ("DELETE", "/v1/assets/talk", None)):
                status, body = _fresh(method, port, path, data, {"Content-Type": "audio/wav"})
                status_after, job_after = _fresh("GET", port, f"/v1/jobs/{job_id}")
                assert status_after == 200, job_after
                after = json.loads(job_after)["state"]
                if after not in ("done", "failed"):  # the job ran throughout: it must refuse
                    refused.append((method, status))
                deleted = deleted or (method == "DELETE" and status == 204)
        assert seen[-1] == "done", seen
        assert refused and all(code == 409 for _, code in refused), refused
        assert len(seen) >= 4, seen  # several looks while it ran, each on a new connection
        for _ in range(12):  # after the end: the job and its final event, from any worker
            status, body = _fresh("GET", port, f"/v1/jobs/{job_id}")
            assert status == 200 and json.loads(body)["state"] == "done", body
            status, body = _fresh("GET", port, f"/v1/jobs/{job_id}/events")
            assert status == 200 and b"event: done" in body, body
        status, body = _fresh("GET", port, "/v1/assets/talk")
        if deleted:
            assert status == 404, body
        else:
            assert status == 200 and json.loads(body)["state"] == "ready", body
        assert _fresh("GET", port, "/v1/jobs/0123456789abcdef")[0] == 404
        assert _fresh("GET", port, "/v1/jobs/..%2f..%2fetc")[0] == 404


def test_an_event_stream_on_another_worker_follows_the_job(tmp_path: Path) -> None:
    """Event streams opened on connections of their own while the job runs each go on to
    its end, wherever they land (the worker without the job reads the board)."""
    with _uploading_on_two_workers(tmp_path, seconds=20.0) as (port, job_id, _speech):

        def follow() -> list[str]:
            status, body = _fresh("GET", port, f"/v1/jobs/{job_id}/events")
            assert status == 200, body
            return [line[len("event: "):] for line in body.decode().splitlines()
                    if line.startswith("event: ")]

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            streams = list(pool.map(lambda _: follow(), range(12)))
        for events in streams:
            assert events[-1] == "done", streams
            assert events.count("done") == 1 and "failed" not in events, streams
        # at least one stream saw the job running, not only its end
        assert any("progress" in events for events in streams), streams


def test_any_worker_answers_metrics_for_all(tmp_path: Path) -> None:
    """Behind one port a scrape lands on any worker; it reports every worker's counters,
    each labelled with its worker (origin.observe.metrics_share)."""
    port = _free_port()
    with _serving({"SORI_ORIGIN_PORT": str(port), "SORI_ORIGIN_WORKERS": "2",
                   "SORI_STORAGE_ROOT": str(tmp_path / "media"),
                   "SORI_ORIGIN_ACCESS_LOG": "false"}):
        for _ in range(40):
            assert _fresh("GET", port, "/healthz")[0] == 200
        time.sleep(metrics_share.PUBLISH_EVERY + 0.5)  # every worker has published since
        for _ in range(6):
            status, body = _fresh("GET", port, "/metrics")
            assert status == 200
            healthz = {s.labels["worker"]: s.value
                       for fam in text_string_to_metric_families(body.decode())
                       for s in fam.samples
                       if s.name == "sori_http_requests_total"
                       and s.labels.get("route") == "ops" and s.labels.get("status") == "200"}
            assert len(healthz) == 2, healthz  # both workers, in one answer
            assert sum(healthz.values()) >= 40, healthz  # the scrapes count once answered


def test_refuses_to_start_exposed(tmp_path: Path) -> None:
    env = {**os.environ, "SORI_ORIGIN_HOST": "0.0.0.0", "SORI_ORIGIN_PORT": str(_free_port()),
           "SORI_STORAGE_ROOT": str(tmp_path / "media")}
    env.pop("SORI_SECURITY_API_KEYS", None)
    result = subprocess.run([sys.executable, "-c", SERVE_CODE], env=env, capture_output=True,
                            timeout=30, cwd=REPO)
    assert result.returncode == 2
    assert b"api_keys" in result.stderr
