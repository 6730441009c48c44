"""Fixtures shared by the whole suite.

Storage (this section): an S3-protocol server for the session (`s3_server`), the
two stores (`local_store`, `s3_store`, and `store` parametrised over both), and a
private server that a test may stop, pause and start again (`s3_outage_server`).
The S3 server is `moto_server` started here, or the server named by
SORI_TEST_S3_ENDPOINT (with SORI_TEST_S3_ACCESS_KEY / SORI_TEST_S3_SECRET_KEY /
SORI_TEST_S3_REGION), e.g. a real MinIO.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner
from hypothesis import settings as hypothesis_settings
from minio import Minio

from origin.fast_lane import OriginRunner
from sori.config import StorageConfig
from storage import LocalStore, S3Store, Store

# Property tests judge correctness, not speed: on two shared cores a case can take longer
# than hypothesis's default 200 ms deadline, which would fail a correct test at random.
hypothesis_settings.register_profile("sori", deadline=None)
hypothesis_settings.load_profile("sori")

# The DASH-MPD schema every MPD is validated against, kept in the repository (tests/schemas)
# so that a clean clone needs no sibling folder and no network.
DASH_XSD = Path(__file__).resolve().parent / "schemas" / "dash" / "DASH-MPD.xsd"
os.environ.setdefault("SORI_TEST_DASH_SCHEMA", str(DASH_XSD))

# --- S3 test servers -------------------------------------------------------------------

MIB = 1024 * 1024
S3_TEST_TIMEOUT = 3.0  # seconds; StorageConfig.timeout for test stores
_SERVER_START_TIMEOUT = 30.0
_MOTO_KEY = "testing"  # moto checks no credentials


@dataclass(frozen=True)
class S3Server:
    """Where an S3-protocol test server listens and how to sign in."""

    endpoint: str  # "host:port", plain HTTP
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def config(self, bucket: str, **overrides: Any) -> StorageConfig:
        """A StorageConfig for the s3 backend on this server (5 MiB multipart parts)."""
        cfg = StorageConfig(
            backend="s3", endpoint=self.endpoint, bucket=bucket, access_key=self.access_key,
            secret_key=self.secret_key, secure=False, region=self.region,
            multipart_threshold=5 * MIB, timeout=S3_TEST_TIMEOUT,
        )
        return dataclasses.replace(cfg, **overrides)

    def client(self) -> Minio:
        """A plain SDK client, for set-up and clean-up the Store protocol has no verb for."""
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=False, region=self.region)

    async def drop_bucket(self, bucket: str) -> None:
        """Empty and remove a test bucket (a no-op when it is already gone)."""
        store = S3Store(self.config(bucket))
        try:
            await store.delete_prefix("")
            client = self.client()
            if client.bucket_exists(bucket):
                client.remove_bucket(bucket)
        finally:
            await store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "moto_server"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    return [*base, "-H", "127.0.0.1", "-p", str(port)]


class MotoServer:
    """A `moto_server` process on 127.0.0.1 that can be stopped, paused and started
    again on the same port (its objects are in memory: a restart forgets them)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.info = S3Server(f"127.0.0.1:{self.port}", _MOTO_KEY, _MOTO_KEY)
        self._proc: subprocess.Popen[bytes] | None = None
        fd, self._log_path = tempfile.mkstemp(prefix="moto-", suffix=".log")
        os.close(fd)

    def start(self) -> None:
        assert self._proc is None, "already running"
        with open(self._log_path, "ab") as log:  # the child keeps its own copy of the fd
            self._proc = subprocess.Popen(
                _moto_command(self.port), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + _SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"http://{self.info.endpoint}/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.1)
        self.stop()
        log = Path(self._log_path).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"moto_server did not start on port {self.port}:\n{log}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)  # in case it was paused
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def pause(self) -> None:
        """Freeze the process: connections are accepted by the kernel but never answered."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._log_path)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's S3 server: SORI_TEST_S3_ENDPOINT if set, else a moto_server."""
    endpoint = os.environ.get("SORI_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Server(endpoint, os.environ.get("SORI_TEST_S3_ACCESS_KEY", ""),
                       os.environ.get("SORI_TEST_S3_SECRET_KEY", ""),
                       os.environ.get("SORI_TEST_S3_REGION", "us-east-1"))
        return
    server = MotoServer()
    server.start()
    try:
        yield server.info
    finally:
        server.close()


@pytest.fixture
def s3_outage_server() -> Iterator[MotoServer]:
    """A private, running moto_server for tests that stop, pause or restart it."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


# --- stores ----------------------------------------------------------------------------

@pytest.fixture
async def local_store(tmp_path: Path) -> AsyncIterator[LocalStore]:
    """A LocalStore rooted at a fresh directory, `tmp_path / "media"` (not yet created)."""
    store = LocalStore(tmp_path / "media")
    yield store
    await store.close()


@pytest.fixture
async def s3_store(s3_server: S3Server) -> AsyncIterator[S3Store]:
    """An S3Store on a fresh bucket of the session's server, emptied and removed after."""
    bucket = f"sori-test-{uuid.uuid4().hex[:16]}"
    store = S3Store(s3_server.config(bucket))
    try:
        yield store
    finally:
        await store.close()
        await s3_server.drop_bucket(bucket)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each Store implementation in turn (test ids `[local]` and `[s3]`)."""
    result: Store = request.getfixturevalue(f"{request.param}_store")
    return result


# --- the origin over a real socket -----------------------------------------------------------

class OriginTestServer(TestServer):
    """aiohttp's TestServer running an app the way `sori serve` runs it: behind the fast lane
    (origin/fast_lane.py), so every functional test goes through both paths."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return OriginRunner(self.app, **kwargs)


@pytest.fixture
def origin_client(aiohttp_client: Any) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    """`await origin_client(app, **client_kwargs)`: a client of `app` served as in production."""

    async def make(app: web.Application, **kwargs: Any) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = await aiohttp_client(OriginTestServer(app), **kwargs)
        return client

    return make
