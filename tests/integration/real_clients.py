"""Support for the real-client tests (no tests here): packaged media served by `sori serve`
as a subprocess, nginx as a subprocess, and a crawler that walks an asset over HTTP the way
a player does and checks everything it meets.

Used by test_clients_*.py, test_cdn.py and bench/startup.py:

    env = local_env(root)                        # or s3_env(server, bucket), + SORI_* overrides
    package(env, wav, "talk")                    # the e2e module's `sori package` helper
    with serve(env, log) as origin:              # `sori serve` on a free port
        crawl = crawl_asset(origin.base, "talk", duration=...)
        with cdn(work, origin.port) as edge:     # nginx proxy_cache in front of it
            ...

Speech and packaging come from the Chromium end-to-end module (tests/e2e/test_player.py),
so there is one way to make espeak-ng speech and to run `sori package` in the suite; the
origin runner here takes a whole environment, so it also serves the S3 store and takes
SORI_ORIGIN_* overrides.

Nothing is skipped: a missing tool is a failure that says how to install it.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import m3u8
from audio_checks import dash_schema
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "tests" / "e2e"))
from test_player import SORI, _package, _speech  # noqa: E402 - the e2e module's helpers

__all__ = ["SORI", "make_speech", "package", "make_video", "library", "Library",
           "package_all", "KINDS", "ASSET_IDS", "SPEECH", "local_env", "s3_env", "serve",
           "Origin", "nginx", "cdn", "HttpClient", "Response", "Crawl", "crawl_asset",
           "free_port", "require_tool", "NGINX"]

NGINX = Path(os.environ.get("SORI_TEST_NGINX", "/usr/sbin/nginx"))
SERVER_START_TIMEOUT = 20.0
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}

HLS_TYPE = "application/vnd.apple.mpegurl"
DASH_TYPE = "application/dash+xml"
SEGMENT_TYPES = ("video/iso.segment", "audio/mp4", "video/mp4")
IMMUTABLE = "public, max-age=31536000, immutable"

# --- tools, media, packaging -------------------------------------------------------------


def require_tool(path_or_name: str | Path, how: str) -> str:
    """The tool's path; a loud failure (never a skip) when it is missing."""
    import pytest

    found = shutil.which(str(path_or_name))
    if found is None:
        pytest.fail(f"{path_or_name} is missing: {how}", pytrace=False)
    return found


def make_speech(path: Path, text: str, voice: str = "en-us", minimum: float = 10.0) -> Path:
    """espeak-ng speech as a WAV (tests/e2e/test_player.py's helper)."""
    require_tool("espeak-ng", "apt-get install espeak-ng (`make demo` does)")
    made: Path = _speech(path, text, voice, minimum)
    return made


def package(env: dict[str, str], src: Path, asset_id: str, title: str | None = None) -> None:
    """`sori package SRC --id ID` with `env` (tests/e2e/test_player.py's helper)."""
    _package(env, src, asset_id, title or asset_id)


def make_video(path: Path, seconds: float = 8.0, size: str = "640x360") -> Path:
    """A small H.264 + AAC test clip: ffmpeg's testsrc pattern and a sine tone."""
    ffmpeg = require_tool("ffmpeg", "apt-get install ffmpeg (`make demo` does)")
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", f"{seconds}", "-c:v", "libx264", "-preset", "veryfast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", str(path)],
                   check=True, capture_output=True, timeout=120)
    return path


# The library the real-client modules share: packaged once per test session by the CLI into
# a local store under pytest's session temp dir; a module that changes it works on a copy.
SPEECH = (
    "Good evening, and welcome to a short recording made for the client tests. "
    "The origin serves these words to ffmpeg, once through the playlist of each variant and "
    "once through the dash manifest, and every copy must decode to the very same length."
)
KINDS = ("audio", "video")  # packager/video.py has landed: both kinds are packaged
ASSET_IDS = {"audio": "speech", "video": "clip"}


@dataclass
class Library:
    root: Path  # a local store holding ASSET_IDS
    sources: dict[str, Path]  # kind -> source file

    def record(self, kind: str) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(
            (self.root / ASSET_IDS[kind] / "asset.json").read_text())
        return record

    def copy(self, dest: Path) -> Path:
        """A private copy of the store (for tests that re-package or delete)."""
        shutil.copytree(self.root, dest)
        return dest


def library(tmp_path_factory: Any) -> Library:
    """Speech (about 16 s of espeak-ng) and a video clip (testsrc + sine, 8 s, 640x360),
    packaged by `sori package` into a local store once per session."""
    base = tmp_path_factory.getbasetemp() / "clients-library"
    sources = {"audio": base / "speech.wav", "video": base / "clip.mp4"}
    lib = Library(base / "store", sources)
    if (base / "done").exists():
        return lib
    require_tool("ffmpeg", "apt-get install ffmpeg (`make demo` does)")
    require_tool("ffprobe", "apt-get install ffmpeg (`make demo` does)")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    make_speech(sources["audio"], SPEECH, minimum=14.0)
    make_video(sources["video"], seconds=8.0, size="640x360")
    package_all(local_env(lib.root), sources)
    (base / "done").touch()
    return lib


def package_all(env: dict[str, str], sources: dict[str, Path]) -> None:
    """Package every kind's source under its ASSET_IDS id, two CLI runs at once."""
    with ThreadPoolExecutor(len(sources)) as pool:
        for job in [pool.submit(package, env, src, ASSET_IDS[kind])
                    for kind, src in sources.items()]:
            job.result()


# Where `sori` processes started by tests keep their analytics (not the checkout's var/):
# one file for the test session, unless a test names its own.
_ANALYTICS_DB = Path(tempfile.gettempdir()) / f"sori-tests-{os.getpid()}-analytics.sqlite3"


@atexit.register
def _remove_analytics_db() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_ANALYTICS_DB}{suffix}").unlink(missing_ok=True)


def _clean_environ() -> dict[str, str]:
    """os.environ without SORI_* settings the caller's shell may carry (SORI_TEST_* stay)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SORI_") or k.startswith("SORI_TEST_")}
    env["SORI_ANALYTICS_DATABASE"] = str(_ANALYTICS_DB)
    return env


def local_env(root: Path, **overrides: str) -> dict[str, str]:
    """Environment for `sori` on a local store at `root`; overrides as SORI_X_Y="value"."""
    return {**_clean_environ(), "SORI_STORAGE_BACKEND": "local",
            "SORI_STORAGE_ROOT": str(root), **overrides}


def s3_env(server: object, bucket: str, **overrides: str) -> dict[str, str]:
    """Environment for `sori` on an S3 store (`server`: conftest's S3Server)."""
    return {**_clean_environ(), "SORI_STORAGE_BACKEND": "s3",
            "SORI_STORAGE_ENDPOINT": server.endpoint,  # type: ignore[attr-defined]
            "SORI_STORAGE_BUCKET": bucket,
            "SORI_STORAGE_ACCESS_KEY": server.access_key,  # type: ignore[attr-defined]
            "SORI_STORAGE_SECRET_KEY": server.secret_key,  # type: ignore[attr-defined]
            "SORI_STORAGE_REGION": server.region,  # type: ignore[attr-defined]
            "SORI_STORAGE_SECURE": "false", **overrides}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes ---------------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_http(proc: subprocess.Popen[bytes], url: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n{_tail(log)}")
        try:
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                              timeout=1)
            conn.request("GET", parts.path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {SERVER_START_TIMEOUT} s:\n"
                               f"{_tail(log)}")
        time.sleep(0.05)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except FileNotFoundError:
        return "(no log)"


@dataclass
class Origin:
    base: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def media_requests(self) -> int:
        """Requests the origin answered under /assets/ so far (its /metrics counter)."""
        body = HttpClient(self.base).get("/metrics").body.decode()
        total = 0.0
        for m in re.finditer(r'^sori_http_requests_total\{([^}]*)\} (\S+)$', body, re.M):
            if 'route="media"' in m.group(1):
                total += float(m.group(2))
        return int(total)

    def media_statuses(self) -> dict[str, int]:
        """Media requests answered so far by status code."""
        body = HttpClient(self.base).get("/metrics").body.decode()
        out: dict[str, int] = {}
        for m in re.finditer(r'^sori_http_requests_total\{([^}]*)\} (\S+)$', body, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if labels.get("route") == "media":
                out[labels["status"]] = out.get(labels["status"], 0) + int(float(m.group(2)))
        return out


@contextlib.contextmanager
def serve(env: Mapping[str, str], log: Path, port: int | None = None) -> Iterator[Origin]:
    """Run `sori serve` with `env` on a free port until the block ends (SIGTERM).

    One worker unless `env` says otherwise (SORI_ORIGIN_WORKERS): the origin's /metrics
    then counts every request at once, which the counting tests rely on (with several
    workers the others' figures are up to a second old); the multi-worker tests set it."""
    port = port or free_port()
    env = {"SORI_ORIGIN_WORKERS": "1", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SORI), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(proc, f"{base}/healthz", log, "sori serve")
        yield Origin(base, port, log, proc)
    finally:
        _stop(proc)


_NGINX_MAIN = """\
{user}
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {access_log};
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{http}
}}
"""


@contextlib.contextmanager
def nginx(prefix: Path, http_block: str, port: int, *, workers: int | str = 1,
          access_log: bool = False, ready_path: str = "/") -> Iterator[str]:
    """Run `nginx -p PREFIX -c CONF -g 'daemon off;'` in the foreground with `http_block`
    (which must listen on 127.0.0.1:`port`); yield its base URL."""
    require_tool(NGINX, "apt-get install nginx-light (`make test` does)")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    # As root, nginx drops its workers to `nobody`, who cannot enter pytest's 0700 temp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(_NGINX_MAIN.format(
        user=user, workers=workers, prefix=prefix, http=http_block,
        access_log=f"{prefix}/access.log" if access_log else "off"))
    log = prefix / "error.log"
    with (prefix / "stderr.log").open("wb") as out:
        proc = subprocess.Popen([str(NGINX), "-p", str(prefix), "-c", str(conf),
                                 "-g", "daemon off;"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            _wait_http(proc, base + ready_path, prefix / "stderr.log", "nginx")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\nerror.log:\n{_tail(log)}") from None
        yield base
    finally:
        _stop(proc, signal.SIGQUIT)  # graceful: finish what is in flight


CDN_HTTP = """\
    proxy_cache_path {prefix}/cache levels=1:2 keys_zone=sori:10m max_size=1g inactive=1h
                     use_temp_path=off;
    upstream sori_origin {{ server 127.0.0.1:{origin_port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sori_origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache sori;
            # No proxy_cache_valid: only the origin's Cache-Control decides what is kept
            # and for how long.
            proxy_cache_revalidate on;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
"""


@contextlib.contextmanager
def cdn(prefix: Path, origin_port: int) -> Iterator[str]:
    """nginx as a caching reverse proxy in front of the origin on `origin_port`."""
    port = free_port()
    block = CDN_HTTP.format(prefix=prefix, origin_port=origin_port, port=port)
    with nginx(prefix, block, port, access_log=True, ready_path="/healthz") as base:
        yield base


# --- HTTP --------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def content(self) -> bytes:
        """The body with its Content-Encoding (gzip) undone."""
        coding = (self.header("Content-Encoding") or "identity").lower()
        assert coding in ("identity", "gzip"), f"unexpected Content-Encoding {coding!r}"
        return gzip.decompress(self.body) if coding == "gzip" else self.body


class HttpClient:
    """One keep-alive connection to `base`; plain bytes (no Accept-Encoding is sent)."""

    def __init__(self, base: str, timeout: float = 15.0, source: str | None = None) -> None:
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        # the local address to connect from (a loopback address of its own per user)
        self.source_address = (source, 0) if source is not None else None
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None
                ) -> Response:
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout,
                    source_address=self.source_address)
            try:
                self._conn.request(method, path, headers=dict(headers or {}))
                res = self._conn.getresponse()
                body = res.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # a keep-alive connection the server had closed: once more
                if attempt:
                    raise
                continue
            if res.will_close:
                self.close()
            return Response(res.status, res.msg, body)
        raise AssertionError("unreachable")

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("GET", path, headers)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- the crawler -------------------------------------------------------------------------


@dataclass
class Crawl:
    """Every object of one asset, fetched once each, in the order a player meets them."""

    asset_id: str
    objects: dict[str, Response] = field(default_factory=dict)  # URL path -> response
    variants: list[str] = field(default_factory=list)  # media playlist paths of the master
    renditions: list[str] = field(default_factory=list)  # MPD Representation ids
    hls_segments: set[str] = field(default_factory=set)  # init + media segment paths
    dash_segments: set[str] = field(default_factory=set)
    version: str = ""

    @property
    def paths(self) -> list[str]:
        return list(self.objects)


def _resolve(base_path: str, uri: str) -> str:
    path = urllib.parse.urlsplit(urllib.parse.urljoin("http://x" + base_path, uri)).path
    assert path.startswith("/assets/"), f"{uri!r} (from {base_path}) leaves /assets/"
    return path


def _expect(resp: Response, path: str, types: tuple[str, ...], cache: str) -> None:
    assert resp.status == 200, f"GET {path}: {resp.status} {resp.body[:200]!r}"
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip()
    assert ctype in types, f"GET {path}: Content-Type {ctype!r}, expected one of {types}"
    cc = resp.header("Cache-Control") or ""
    if cache == "immutable":
        assert cc == IMMUTABLE, f"GET {path}: Cache-Control {cc!r}"
    else:
        assert re.fullmatch(r"public, max-age=\d+", cc), f"GET {path}: Cache-Control {cc!r}"
    assert int(resp.header("Content-Length") or -1) == len(resp.body), f"GET {path}: length"


def _check_media_playlist(pl: m3u8.M3U8, path: str, iframes: bool) -> None:
    assert pl.playlist_type == "vod", f"{path}: EXT-X-PLAYLIST-TYPE {pl.playlist_type!r}"
    assert pl.is_endlist, f"{path}: no EXT-X-ENDLIST"
    assert pl.segment_map, f"{path}: no EXT-X-MAP"
    assert pl.segments, f"{path}: no segments"
    assert pl.is_i_frames_only == iframes, f"{path}: EXT-X-I-FRAMES-ONLY is {pl.is_i_frames_only}"
    for seg in pl.segments:
        # RFC 8216 §4.3.3.1: each EXTINF rounded to an integer is at most the target.
        assert round(seg.duration) <= pl.target_duration, (
            f"{path}: {seg.uri} lasts {seg.duration} s > target {pl.target_duration}")


def _expand_mpd(mpd_path: str, root: etree._Element) -> dict[str, tuple[str, list[str]]]:
    """Representation id -> (content type, [init path, segment paths...]) from every
    SegmentTemplate + SegmentTimeline of the MPD."""
    out: dict[str, tuple[str, list[str]]] = {}
    for aset in root.iterfind("d:Period/d:AdaptationSet", MPD_NS):
        ctype = aset.get("contentType") or aset.get("mimeType", "").split("/")[0]
        for rep in aset.iterfind("d:Representation", MPD_NS):
            rid = rep.get("id")
            tmpl = rep.find("d:SegmentTemplate", MPD_NS)
            if tmpl is None:
                tmpl = aset.find("d:SegmentTemplate", MPD_NS)
            assert tmpl is not None, f"{mpd_path}: Representation {rid} has no SegmentTemplate"
            timeline = tmpl.find("d:SegmentTimeline", MPD_NS)
            assert timeline is not None, f"{mpd_path}: {rid} has no SegmentTimeline"

            def fill(template: str, number: int | None = None, rid: str | None = rid,
                     bw: str | None = rep.get("bandwidth")) -> str:
                def sub(m: re.Match[str]) -> str:
                    name, fmt = m.group(1), m.group(2)
                    if name == "":
                        return "$"
                    value = {"RepresentationID": rid, "Bandwidth": bw,
                             "Number": number}.get(name)
                    assert value is not None, f"{mpd_path}: unsupported ${name}$"
                    if name == "RepresentationID":
                        return str(value)
                    return (fmt or "%d") % int(value)
                return re.sub(r"\$(\w*)(%0\d+d)?\$", sub, template)

            number = int(tmpl.get("startNumber", "1"))
            paths = [_resolve(mpd_path, fill(tmpl.get("initialization", "")))]
            for s in timeline.iterfind("d:S", MPD_NS):
                repeat = int(s.get("r", "0"))
                assert repeat >= 0, f"{mpd_path}: open-ended S@r in a static MPD"
                for _ in range(repeat + 1):
                    paths.append(_resolve(mpd_path, fill(tmpl.get("media", ""), number)))
                    number += 1
            assert rid is not None and rid not in out, f"{mpd_path}: duplicate id {rid}"
            out[rid] = (ctype, paths)
    return out


def _mpd_duration(value: str) -> float:
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", value)
    assert m, f"unexpected duration {value!r}"
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def crawl_asset(base: str, asset_id: str, *, duration: float | None = None,
                extra_paths: tuple[str, ...] = (), headers: Mapping[str, str] | None = None,
                client: HttpClient | None = None) -> Crawl:
    """Walk an asset over HTTP as players do and check what is served: the master
    playlist and every media and I-frame playlist (m3u8: VOD, ENDLIST, MAP, target
    duration), the MPD (XSD-valid, static, SegmentTemplate + SegmentTimeline expanded),
    every init and media segment both reference (200, content type, immutable), and
    `extra_paths` (poster, thumbnails). Each URL is fetched once. With `duration`, the
    playlists and the MPD must add up to it within 0.1 s."""
    http_ = client or HttpClient(base)
    crawl = Crawl(asset_id)

    def fetch(path: str, types: tuple[str, ...], cache: str) -> Response:
        if path in crawl.objects:
            return crawl.objects[path]
        resp = http_.get(path, headers)
        _expect(resp, path, types, cache)
        crawl.objects[path] = resp
        return resp

    root = f"/assets/{asset_id}/"
    # HLS: multivariant playlist → media playlists (and I-frame playlists).
    master_path = root + "master.m3u8"
    master = m3u8.loads(fetch(master_path, (HLS_TYPE,), "entry").content.decode())
    assert master.is_variant, f"{master_path} is not a multivariant playlist"
    assert master.is_independent_segments, f"{master_path}: no EXT-X-INDEPENDENT-SEGMENTS"
    assert master.playlists, f"{master_path}: no variants"
    media_paths = [_resolve(master_path, p.uri) for p in master.playlists]
    media_paths += [_resolve(master_path, m.uri) for m in master.media if m.uri]
    iframe_paths = [_resolve(master_path, p.uri) for p in master.iframe_playlists]
    crawl.variants = [_resolve(master_path, p.uri) for p in master.playlists]
    versions = {p.split("/")[4] for p in media_paths + iframe_paths}
    assert len(versions) == 1, f"{master_path} mixes versions {versions}"
    crawl.version = versions.pop()
    segment_types: dict[str, tuple[str, ...]] = {}
    byteranges: list[tuple[str, int, int]] = []
    for path in dict.fromkeys(media_paths + iframe_paths):
        iframes = path in iframe_paths
        pl = m3u8.loads(fetch(path, (HLS_TYPE,), "immutable").content.decode())
        _check_media_playlist(pl, path, iframes)
        init = _resolve(path, pl.segment_map[0].uri)
        crawl.hls_segments.add(init)
        segment_types.setdefault(init, ("audio/mp4", "video/mp4"))
        for seg in pl.segments:
            seg_path = _resolve(path, seg.uri)
            segment_types.setdefault(seg_path, SEGMENT_TYPES)
            if iframes:
                length, _, offset = (seg.byterange or "").partition("@")
                assert length, f"{path}: I-frame segment {seg.uri} without EXT-X-BYTERANGE"
                byteranges.append((seg_path, int(offset or 0), int(length)))
            else:
                crawl.hls_segments.add(seg_path)
        if duration is not None and not iframes:
            total = sum(s.duration for s in pl.segments)
            assert abs(total - duration) <= 0.1, f"{path}: EXTINFs add up to {total}, not {duration}"

    # DASH: the MPD, valid against the schema, and every URL its templates expand to.
    mpd_path = root + "manifest.mpd"
    mpd_body = fetch(mpd_path, (DASH_TYPE,), "entry").content
    doc = etree.fromstring(mpd_body)
    schema = dash_schema()
    assert schema.validate(doc), f"{mpd_path} fails the DASH-MPD XSD: {schema.error_log}"
    ET.fromstring(mpd_body)  # plain XML too, as simple clients parse it
    assert doc.get("type", "static") == "static", f"{mpd_path}: type {doc.get('type')}"
    if duration is not None:
        mpd_duration = _mpd_duration(doc.get("mediaPresentationDuration", ""))
        assert abs(mpd_duration - duration) <= 0.1, f"{mpd_path}: lasts {mpd_duration}"
    for rid, (ctype, paths) in _expand_mpd(mpd_path, doc).items():
        crawl.renditions.append(rid)
        # CONTRACT §4 allows either type on an init segment, but never audio/ on video.
        init_type = ("video/mp4",) if ctype == "video" else ("audio/mp4", "video/mp4")
        segment_types[paths[0]] = init_type
        for p in paths[1:]:
            segment_types.setdefault(p, SEGMENT_TYPES)
        crawl.dash_segments.update(paths)
    assert crawl.hls_segments == crawl.dash_segments, (
        "HLS and DASH must reference one copy of the media: "
        f"only HLS {sorted(crawl.hls_segments - crawl.dash_segments)[:5]}, "
        f"only DASH {sorted(crawl.dash_segments - crawl.hls_segments)[:5]}")

    # The media itself, each object once.
    for path, types in segment_types.items():
        fetch(path, types, "immutable")
    for path, offset, length in byteranges:
        size = len(crawl.objects[path].content)
        assert offset + length <= size, f"I-frame byte range {length}@{offset} past {path}"
    for path in extra_paths:
        resp = fetch(path, ("image/jpeg", "image/png", "image/webp", "text/vtt"), "immutable")
        if path.endswith(".vtt"):  # a thumbnail track: the sprites its cues point at
            text = resp.content.decode()
            assert text.startswith("WEBVTT"), f"{path} is not WebVTT"
            for uri in dict.fromkeys(re.findall(r"^(\S+?)(?:#xywh=[\d,]+)?$", text, re.M)):
                if not uri.startswith(("WEBVTT", "NOTE")) and "-->" not in uri:
                    fetch(_resolve(path, uri), ("image/jpeg", "image/png", "image/webp"),
                          "immutable")
    if client is None:
        http_.close()
    return crawl
