"""Support for the job-queue tests (no tests here): a real `redis-server` on a free loopback
port (stop and start it again on the same port), `sori worker` processes, and small HTTP
helpers for uploads, jobs and their event streams.

    with RedisServer(tmp) as redis:                    # redis-server, no persistence
        env = queue_env(local_env(root), redis, tmp)   # SORI_JOBS_* for serve and worker
        with serve(env, log) as origin, worker(env, log2) as w:
            status, body, headers = upload(origin.base, wav, "talk")
            job = wait_job(origin.base, body["job"]["id"], "done")
            w.kill_hard()                              # SIGKILL, its ffmpeg children too

Redis is Debian's redis-server, installed by `make install-test`; missing, it is a failure
that says so, never a skip.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from real_clients import REPO, SORI, free_port, require_tool

START_TIMEOUT = 10.0


class RedisServer:
    """`redis-server --port N --save '' --appendonly no --dir TMP` on 127.0.0.1."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.binary = require_tool("redis-server", "apt-get install redis-server "
                                                   "(`make install-test` does)")
        self.directory = directory
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / f"redis-{self.port}.log"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.command("PING") == "+PONG":
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def command(self, *args: str) -> str | None:
        """One inline command; the first line of the reply, None when no answer."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall((" ".join(args) + "\r\n").encode())
                return s.recv(65536).split(b"\r\n", 1)[0].decode()
        except OSError:
            return None


def queue_env(env: Mapping[str, str], redis: RedisServer, work: Path,
              **overrides: str) -> dict[str, str]:
    """`env` with the redis job backend, a quick heartbeat and sweep (a dead worker is
    noticed within seconds), and an upload directory of its own."""
    return {**env, "SORI_JOBS_BACKEND": "redis", "SORI_JOBS_REDIS_URL": redis.url,
            "SORI_JOBS_HEARTBEAT": "3", "SORI_JOBS_SWEEP_INTERVAL": "1",
            "SORI_JOBS_SHUTDOWN_GRACE": "5",
            "SORI_ORIGIN_UPLOAD_DIR": str(work / "uploads"), **overrides}


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    def kill_hard(self) -> None:
        """SIGKILL the worker and everything it started (its ffmpeg processes): what a
        machine that dies does."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def worker(env: Mapping[str, str], log: Path) -> Iterator[Worker]:
    """`sori worker` in a session of its own until the block ends (SIGTERM)."""
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SORI), "worker"], env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while b"Worker starting" not in log.read_bytes():
            assert proc.poll() is None, f"sori worker exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"sori worker not ready:\n{log.read_text()}"
            time.sleep(0.05)
        yield Worker(proc, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --- HTTP --------------------------------------------------------------------------------


def call(base: str, method: str, path: str, body: bytes | None = None,
         headers: Mapping[str, str] | None = None) -> tuple[int, Any, http.client.HTTPMessage]:
    """One request on a fresh connection: (status, JSON body or bytes, headers)."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        res = conn.getresponse()
        data = res.read()
    finally:
        conn.close()
    if res.headers.get("Content-Type", "").startswith("application/json") and data:
        return res.status, json.loads(data), res.headers
    return res.status, data, res.headers


def upload(base: str, path: Path, asset_id: str) -> tuple[int, Any, http.client.HTTPMessage]:
    return call(base, "POST", f"/v1/assets?id={asset_id}", path.read_bytes(),
                {"Content-Type": "audio/wav"})


def job(base: str, job_id: str) -> dict[str, Any]:
    status, body, _ = call(base, "GET", f"/v1/jobs/{job_id}")
    assert status == 200, (status, body)
    assert isinstance(body, dict)
    return body


def wait_job(base: str, job_id: str, until: str | tuple[str, ...] = ("done", "failed"),
             timeout: float = 90.0, **fields: Any) -> dict[str, Any]:
    """Poll the job until its state is in `until` (and its other fields match)."""
    wanted = (until,) if isinstance(until, str) else until
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = job(base, job_id)
        if last["state"] in wanted and all(last.get(k) == v for k, v in fields.items()):
            return last
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not {wanted} {fields} after {timeout} s: {last}")


def events(base: str, job_id: str, timeout: float = 90.0) -> list[tuple[str, dict[str, Any]]]:
    """The job's Server-Sent Events until the stream ends: [(event, JOB), ...]."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                      timeout=timeout)
    out: list[tuple[str, dict[str, Any]]] = []
    try:
        conn.request("GET", f"/v1/jobs/{job_id}/events")
        res = conn.getresponse()
        assert res.status == 200, res.status
        assert res.headers["Content-Type"].startswith("text/event-stream")
        name, data = "", ""
        for raw in res:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "" and name:
                out.append((name, json.loads(data)))
                name, data = "", ""
    finally:
        conn.close()
    return out


def make_tone(path: Path, seconds: float) -> Path:
    """A long input that packages in a few seconds: ffmpeg's sine at speech loudness
    (loudness normalisation still measures and levels it)."""
    ffmpeg = require_tool("ffmpeg", "apt-get install ffmpeg (`make demo` does)")
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=220:sample_rate=44100:duration={seconds}",
                    "-af", "volume=-12dB", "-ac", "1", str(path)],
                   check=True, capture_output=True, timeout=60)
    return path
