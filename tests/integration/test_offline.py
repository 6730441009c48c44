"""Offline bundles over real sockets, on both stores: `GET /v1/offline` and `sori bundle`
on assets packaged by real ffmpeg from espeak-ng speech and a short video.

The bundle unzips clean (Info-ZIP `unzip -t`, Python's zipfile) with every member equal
to the store's bytes; it is the same on every request and from `sori bundle`; any set of
ranges reassembles it; validators hold; every bad request is a 4xx before any byte;
private assets need a token each; and the origin's memory stays flat while it sends a
bundle of a two-hour asset.

The speech asset is packaged with a JSON transcript (cues and a chapter), so its
record names the transcript's .vtt and .txt and the chapters JSON, which the bundle
carries beside the audio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import shutil
import struct
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from real_clients import SORI, HttpClient, local_env, s3_env, serve
from test_api_support import PACKAGER, make_speech

from origin.app import create_app
from packager.pipeline import package
from packager.transcript.parse import parse
from settings import Config, OriginConfig, SecurityConfig
from signing.tokens import mint
from storage.base import Store
from storage.local import LocalStore
from storage.s3 import S3Store

KEYS = {"k1": "a-signing-secret-for-offline-tests-01"}
WRITE_KEY = "offline-write-key"
TALK, CLIP, SECRET, SECRET2 = "talk-1", "clip-1", "secret-1", "secret-2"
MAX_ASSETS = 4
TRANSCRIPT = json.dumps({"language": "en", "chapters": [{"start": 0, "title": "Intro"}],
                         "cues": [{"start": 0.0, "end": 1.5, "text": "Sori packages"},
                                  {"start": 1.5, "end": 3.0, "text": "spoken words."}]}).encode()


def _unzip_t(path: Path) -> str:
    unzip = shutil.which("unzip")
    assert unzip, "Info-ZIP unzip is missing: apt-get install unzip (`make test` does)"
    out = subprocess.run([unzip, "-t", str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "No errors detected" in out.stdout, out.stdout + out.stderr
    return out.stdout


def _config(tmp_path: Path, **origin: Any) -> Config:
    return Config(
        origin=dataclasses.replace(OriginConfig(), upload_dir=str(tmp_path / "uploads"),
                                   offline_max_assets=MAX_ASSETS, access_log=False, **origin),
        packager=PACKAGER,
        security=dataclasses.replace(SecurityConfig(), signing_keys=KEYS, api_keys=(WRITE_KEY,),
                                     token_failures_per_minute=0),
    ).validate()


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every object of four assets packaged once by real ffmpeg (public speech with a
    transcript, a video with its poster, two private speech assets)."""
    root = tmp_path_factory.mktemp("offline")
    speech = make_speech(root / "speech.wav")
    video = root / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(video)], check=True, capture_output=True, timeout=120)
    store = LocalStore(root / "store")

    async def run() -> None:
        await package(speech, store, PACKAGER, asset_id=TALK, title="Talk <one> & more",
                      transcript=parse(TRANSCRIPT, "talk.json"))
        await package(video, store, PACKAGER, asset_id=CLIP, title="Clip")
        await package(speech, store, PACKAGER, asset_id=SECRET, access="private")
        await package(speech, store, PACKAGER, asset_id=SECRET2, access="private")

    asyncio.run(run())
    return {str(p.relative_to(root / "store")): p.read_bytes()
            for p in (root / "store").rglob("*") if p.is_file()}


@dataclasses.dataclass
class Origin:
    client: Any
    store: Store
    objects: dict[str, bytes]
    env: dict[str, str]  # `sori` on the same store

    def record(self, asset_id: str) -> dict[str, Any]:
        rec: dict[str, Any] = json.loads(self.objects[f"{asset_id}/asset.json"])
        return rec

    def download(self, asset_id: str) -> bytes:
        return self.objects[f"{asset_id}/{self.record(asset_id)['download_key']}"]

    async def get(self, target: str, **kwargs: Any) -> tuple[int, Any, bytes]:
        async with self.client.request(kwargs.pop("method", "GET"), target, **kwargs) as resp:
            return resp.status, resp.headers, await resp.read()


@pytest.fixture
async def origin(store: Store, packaged: dict[str, bytes], origin_client: Any,
                 tmp_path: Path, request: pytest.FixtureRequest) -> Origin:
    for key, data in packaged.items():
        await store.put_bytes(key, data, "application/octet-stream")
    if isinstance(store, S3Store):
        env = s3_env(request.getfixturevalue("s3_server"), store.bucket)
    else:
        assert isinstance(store, LocalStore)
        env = local_env(store.root)
    env["SORI_ORIGIN_OFFLINE_MAX_ASSETS"] = str(MAX_ASSETS)
    client = await origin_client(create_app(_config(tmp_path), store))
    return Origin(client, store, packaged, env)


def _token(asset: str | None = None, ttl: int = 600, **kwargs: Any) -> str:
    return mint(KEYS, expires=int(time.time()) + ttl, asset=asset, **kwargs)


def _top_level_boxes(data: bytes) -> list[str]:
    out, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        out.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return out


def _local_header_offsets(body: bytes) -> list[int]:
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        return [i.header_offset for i in z.infolist()]


# --- the bundle --------------------------------------------------------------------------------

async def test_every_member_equals_the_store_and_the_bundle_never_changes(
        origin: Origin, tmp_path: Path) -> None:
    target = f"/v1/offline?assets={TALK},{CLIP}"
    status, headers, body = await origin.get(target)
    assert status == 200, body[:300]
    assert headers["Content-Type"] == "application/zip"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["Content-Disposition"] == f'attachment; filename="{TALK}-and-1-more.zip"'
    assert headers["Accept-Ranges"] == "bytes"
    etag = headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert headers["Access-Control-Allow-Origin"] == "*"
    path = tmp_path / "bundle.zip"
    path.write_bytes(body)
    listing = _unzip_t(path)

    talk, clip = origin.record(TALK), origin.record(CLIP)
    tdir = f"{TALK}/v/{talk['version']}"

    def behind(rec: dict[str, Any], field: str) -> bytes:
        asset_id = rec["id"]
        return origin.objects[f"{asset_id}/{rec[field].split(f'/{asset_id}/', 1)[1]}"]

    expected = {
        f"{TALK}/asset.json": None, f"{TALK}/{TALK}.m4a": origin.download(TALK),
        f"{TALK}/transcript.vtt": behind(talk, "transcript"),
        f"{TALK}/transcript.txt": behind(talk, "transcript_text"),
        f"{TALK}/chapters.json": behind(talk, "chapters"),
        f"{CLIP}/asset.json": None, f"{CLIP}/{CLIP}.mp4": origin.download(CLIP),
        f"{CLIP}/poster.jpg": behind(clip, "poster"),
    }
    assert expected[f"{TALK}/transcript.vtt"].startswith(b"WEBVTT")
    assert b"spoken words." in expected[f"{TALK}/transcript.txt"]
    assert b"Intro" in expected[f"{TALK}/chapters.json"]
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names == ["index.json", "index.html", *expected], names
        for name, data in expected.items():
            assert f"testing: {name}" in listing
            if data is not None:
                assert z.read(name) == data, name
        for asset_id in (TALK, CLIP):
            # the record as a client sees it
            _, _, api = await origin.get(f"/v1/assets/{asset_id}")
            assert json.loads(z.read(f"{asset_id}/asset.json")) == json.loads(api)
        index = json.loads(z.read("index.json"))
        assert [a["id"] for a in index["assets"]] == [TALK, CLIP]
        assert index["assets"][0]["files"]["media"]["size"] == len(origin.download(TALK))
        assert index["assets"][1]["files"]["poster"]["name"] == f"{CLIP}/poster.jpg"
        page = z.read("index.html")
        assert b"Talk &lt;one&gt; &amp; more" in page and f'src="{TALK}/{TALK}.m4a"'.encode() in page
        info = z.getinfo(f"{TALK}/{TALK}.m4a")
        assert info.compress_type == zipfile.ZIP_STORED
        created = talk["created"]
        assert info.date_time[:5] == (int(created[:4]), int(created[5:7]), int(created[8:10]),
                                      int(created[11:13]), int(created[14:16]))
    # The progressive files carry their index (moov) in front of the media.
    for data in (origin.download(TALK), origin.download(CLIP)):
        boxes = _top_level_boxes(data)
        assert "moov" in boxes and boxes.index("moov") < boxes.index("mdat"), boxes

    # The same bytes and validator on every request, and for HEAD the same headers.
    for _ in range(2):
        status2, headers2, body2 = await origin.get(target)
        assert status2 == 200 and body2 == body and headers2["ETag"] == etag
    status, head, nothing = await origin.get(target, method="HEAD")
    assert status == 200 and nothing == b""
    for name in ("Content-Length", "ETag", "Content-Type", "Last-Modified",
                 "Content-Disposition"):
        assert head[name] == headers[name], name
    # The checksums were kept next to the immutable objects they describe.
    kept = await origin.store.list(f"{tdir}/offline/")
    assert f"{tdir}/offline/download.m4a.crc32.json" in kept


async def test_ranges_at_every_boundary_reassemble_the_bundle(origin: Origin) -> None:
    target = f"/v1/offline?assets={CLIP},{TALK}"
    _, headers, whole = await origin.get(target)
    size, etag = len(whole), headers["ETag"]
    marks = sorted({0, 1, size - 1, *_local_header_offsets(whole),
                    *(o + 30 for o in _local_header_offsets(whole)),
                    whole.rindex(b"PK\x01\x02"), whole.rindex(b"PK\x05\x06")})
    bounds = [*marks, size]
    parts = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        last = i == len(bounds) - 2
        rng = f"bytes={a}-" if last else f"bytes={a}-{b - 1}"
        status, h, body = await origin.get(target, headers={"Range": rng, "If-Range": etag})
        assert status == 206, (rng, status)
        assert h["Content-Range"] == f"bytes {a}-{b - 1}/{size}" and h["ETag"] == etag
        assert int(h["Content-Length"]) == len(body) == b - a
        parts.append(body)
    assert b"".join(parts) == whole
    for a in marks:  # single bytes at the boundaries
        status, _, one = await origin.get(target, headers={"Range": f"bytes={a}-{a}"})
        assert status == 206 and one == whole[a:a + 1]
    status, _, tail = await origin.get(target, headers={"Range": "bytes=-100"})
    assert status == 206 and tail == whole[-100:]
    status, _, all_of_it = await origin.get(target, headers={"Range": f"bytes=-{size * 2}"})
    assert status == 206 and all_of_it == whole


async def test_conditional_requests_and_unsatisfiable_ranges(origin: Origin) -> None:
    target = f"/v1/offline?assets={TALK}"
    _, headers, whole = await origin.get(target)
    etag, modified, size = headers["ETag"], headers["Last-Modified"], len(whole)
    status, h, body = await origin.get(target, headers={"If-None-Match": etag})
    assert status == 304 and body == b"" and h["ETag"] == etag
    status, _, body = await origin.get(target, headers={"If-None-Match": '"other"'})
    assert status == 200 and body == whole
    status, _, body = await origin.get(target, headers={"Range": "bytes=10-19",
                                                        "If-Range": '"stale"'})
    assert status == 200 and body == whole  # a changed bundle is sent whole
    status, _, body = await origin.get(target, headers={"Range": "bytes=10-19",
                                                        "If-Range": modified})
    assert status == 206 and body == whole[10:20]
    status, h, body = await origin.get(target, headers={"Range": f"bytes={size}-"})
    assert status == 416 and h["Content-Range"] == f"bytes */{size}"
    assert json.loads(body)["error"]
    # HEAD ignores Range, as for every media object (RFC 9110 §14.2: Range is for GET)
    status, h, body = await origin.get(target, method="HEAD", headers={"Range": "bytes=0-9"})
    assert status == 200 and body == b"" and int(h["Content-Length"]) == size
    status, _, _ = await origin.get(target, headers={"If-Match": '"other"'})
    assert status == 412
    # a page on another origin may resume it: the preflight allows Range and If-Range
    status, h, _ = await origin.get(target, method="OPTIONS", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range, if-range"})
    assert status == 204 and h["Access-Control-Allow-Origin"] == "*"
    assert {"range", "if-range"} <= {v.strip() for v in
                                     h["Access-Control-Allow-Headers"].split(",")}
    # Another set of assets is another bundle, with another validator.
    _, other, _ = await origin.get(f"/v1/offline?assets={TALK},{CLIP}")
    assert other["ETag"] != etag


async def test_a_rendition_bundle_carries_that_renditions_track(origin: Origin,
                                                                tmp_path: Path) -> None:
    """An AAC rung and the Opus data-saver rung, each as one fragmented MP4 that ffmpeg
    reads whole, for two assets at once (one of them private, with its token)."""
    rec = origin.record(TALK)
    kinds = {r["id"]: r["codecs"] for r in rec["renditions"]}
    assert kinds.get("saver") == "opus", kinds  # the data-saver rung is on by default
    for rung, codec in ((rec["renditions"][0]["id"], "aac"), ("saver", "opus")):
        status, headers, body = await origin.get(
            f"/v1/offline?assets={TALK},{SECRET}&rendition={rung}&token={_token(SECRET)}")
        assert status == 200, body[:300]
        assert headers["Content-Disposition"] == \
            f'attachment; filename="{TALK}-and-1-more.{rung}.zip"'
        path = tmp_path / f"{rung}.zip"
        path.write_bytes(body)
        _unzip_t(path)
        for asset_id in (TALK, SECRET):
            arec = origin.record(asset_id)
            vdir = f"{asset_id}/v/{arec['version']}/{rung}"
            segments = sorted(k for k in origin.objects if k.startswith(f"{vdir}/seg_"))
            assert len(segments) >= 2
            track = origin.objects[f"{vdir}/init.mp4"] + b"".join(origin.objects[k]
                                                                  for k in segments)
            with zipfile.ZipFile(path) as z:
                assert z.read(f"{asset_id}/{asset_id}.{rung}.m4a") == track
                assert json.loads(z.read("index.json"))["rendition"] == rung
            boxes = _top_level_boxes(track)
            assert boxes[:2] == ["ftyp", "moov"] and "moof" in boxes
            # ffmpeg reads the track as a whole file, for the asset's whole duration
            (tmp_path / "t.m4a").write_bytes(track)
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                    "format=duration:stream=codec_name", "-of", "json",
                                    str(tmp_path / "t.m4a")],
                                   capture_output=True, text=True, check=True)
            info = json.loads(probe.stdout)
            assert info["streams"][0]["codec_name"] == codec
            assert abs(float(info["format"]["duration"]) - arec["duration"]) < 0.2


# --- bad requests ------------------------------------------------------------------------------

async def test_every_bad_request_is_refused_before_any_byte(origin: Origin) -> None:
    video_rung = next(r["id"] for r in origin.record(CLIP)["renditions"] if r["type"] == "video")
    cases = [
        ("/v1/offline", 400, "name the assets"),
        ("/v1/offline?assets=", 400, "name the assets"),
        (f"/v1/offline?assets={TALK},", 400, "invalid asset id ''"),
        ("/v1/offline?assets=a/b", 400, "invalid asset id"),
        ("/v1/offline?assets=..", 400, "invalid asset id"),
        ("/v1/offline?assets=%00x", 400, "invalid asset id"),
        (f"/v1/offline?assets={TALK},{CLIP},{TALK}", 400, f"more than once: {TALK}"),
        (f"/v1/offline?assets={TALK}&assets={TALK}", 400, "more than once"),
        ("/v1/offline?assets=a,b,c,d,e", 400, f"at most {MAX_ASSETS}"),
        (f"/v1/offline?assets=nope-1,{TALK},nope-2", 404, "'nope-1', 'nope-2'"),
        (f"/v1/offline?assets={TALK}&rendition=nope", 400, "unknown rendition 'nope'"),
        (f"/v1/offline?assets={TALK}&rendition=", 400, "invalid rendition"),
        (f"/v1/offline?assets={CLIP}&rendition={video_rung}", 400, "video without sound"),
    ]
    for target, code, says in cases:
        for method in ("GET", "HEAD"):
            status, headers, body = await origin.get(target, method=method)
            assert status == code, (target, method, status, body[:200])
            if method == "GET":
                assert headers["Content-Type"].startswith("application/json")
                assert says in json.loads(body)["error"], (target, body)
                assert not body.startswith(b"PK")


async def test_an_asset_still_live_is_409(origin: Origin, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {WRITE_KEY}"}
    status, _, body = await origin.get(
        "/v1/live", method="POST", headers=auth,
        json={"id": "live-1", "format": {"codec": "pcm_s16le", "sample_rate": 16000,
                                         "channels": 1}})
    assert status == 201, body
    try:
        status, _, body = await origin.get(f"/v1/offline?assets={TALK},live-1")
        assert status == 409 and "live-1" in json.loads(body)["error"], body
        never = tmp_path / "never.zip"
        out = subprocess.run([str(SORI), "bundle", "live-1", "-o", str(never)],
                             env=origin.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "still live: live-1" in out.stderr, out.stderr
        assert list(tmp_path.glob("*never*")) == []
    finally:
        await origin.get("/v1/live/live-1/end", method="POST", headers=auth)


# --- private assets ----------------------------------------------------------------------------

async def test_private_assets_need_a_token_each(origin: Origin) -> None:
    both = f"/v1/offline?assets={TALK},{SECRET},{SECRET2}"

    async def status_of(target: str, **kwargs: Any) -> tuple[int, Any, bytes]:
        status, headers, body = await origin.get(target, **kwargs)
        if status != 200:
            assert not body.startswith(b"PK")
        return status, headers, body

    one, two = _token(SECRET), _token(SECRET2)
    for target, reason in [
        (both, "invalid"),
        (f"{both}&token={one}", "invalid"),  # SECRET2 not covered
        (f"{both}&token={_token(TALK)}&token={two}", "invalid"),  # SECRET not covered
        (f"{both}&token=garbage&token={two}", "invalid"),
        (f"{both}&token={_token(SECRET, ttl=-5)}&token={two}", "expired"),
        (f"{both}&token={_token(prefix='talk-')}", "invalid"),
    ]:
        status, headers, body = await status_of(target)
        assert status == 403, (target, status)
        assert headers["Cache-Control"] == "no-store"
        assert json.loads(body)["error"].startswith(f"{reason} token"), body
    status, _, _ = await status_of(both, method="HEAD")
    assert status == 403
    status, headers, whole = await status_of(f"{both}&token={one}&token={two}")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        assert z.read(f"{SECRET2}/{SECRET2}.m4a") == origin.download(SECRET2)
    # one prefix token covering both, and a write key, give the same bundle
    status, _, body = await status_of(f"{both}&token={_token(prefix='secret-')}")
    assert status == 200 and body == whole
    status, _, body = await status_of(both, headers={"Authorization": f"Bearer {WRITE_KEY}"})
    assert status == 200 and body == whole
    status, _, _ = await status_of(both, headers={"Authorization": "Bearer wrong"})
    assert status == 401
    # a token resumes a range like the download endpoint's
    status, _, part = await status_of(f"{both}&token={one}&token={two}",
                                      headers={"Range": "bytes=100-"})
    assert status == 206 and part == whole[100:]


# --- sori bundle -------------------------------------------------------------------------------

async def test_sori_bundle_writes_the_http_body(origin: Origin, tmp_path: Path) -> None:
    _, _, body = await origin.get(f"/v1/offline?assets={CLIP},{TALK}")
    out = tmp_path / "cli.zip"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SORI), "bundle", *args], env=origin.env,
                              capture_output=True, text=True, timeout=120)

    done = await asyncio.to_thread(run, CLIP, TALK, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == body
    # the sidecars the origin left make no difference, and none is needed either
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    target = bad_dir / "b.zip"
    for args, says in [
        ((TALK, "nope-9"), "no asset 'nope-9'"),
        ((TALK, TALK), "more than once"),
        (("a", "b", "c", "d", "e"), f"at most {MAX_ASSETS}"),
        (("bad/id",), "invalid asset id"),
        ((TALK, "--rendition", "nope"), "unknown rendition"),
    ]:
        done = await asyncio.to_thread(run, *args, "-o", str(target))
        assert done.returncode == 2, (args, done.returncode, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], (args, done.stderr)
        assert list(bad_dir.iterdir()) == [], args  # no partial or temporary file
    done = await asyncio.to_thread(run, TALK, "-o", str(tmp_path / "no" / "such" / "dir.zip"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


# --- a real origin process: hypothesis ranges, and memory over a two-hour asset ------------------

@dataclasses.dataclass
class Served:
    base: str
    pid: int
    root: Path
    talk: dict[str, Any]


@pytest.fixture(scope="module")
def served(packaged: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    """`sori serve` over a local store holding the packaged assets plus `long-1`: a two-hour
    progressive file made by looping the packaged speech's download with ffmpeg's stream
    copy (real AAC, index in front), published under its own record and version."""
    root = tmp_path_factory.mktemp("served") / "store"
    for key, data in packaged.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    talk = json.loads(packaged[f"{TALK}/asset.json"])
    version = "long0000002h"
    vdir = root / "long-1" / "v" / version
    vdir.mkdir(parents=True)
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "-1",
                    "-i", str(root / TALK / talk["download_key"]), "-t", "7200", "-c", "copy",
                    "-movflags", "+faststart", "-f", "mp4", str(vdir / "download.m4a")],
                   check=True, timeout=300)
    long_rec = {**talk, "id": "long-1", "title": "Two hours", "duration": 7200.0,
                "version": version, "download_key": f"v/{version}/download.m4a"}
    for name in ("transcript", "transcript_text", "chapters"):
        long_rec.pop(name, None)
    (root / "long-1" / "asset.json").write_text(json.dumps(long_rec))
    log = root.parent / "serve.log"
    with serve(local_env(root), log) as o:
        yield Served(o.base, o.proc.pid, root, talk)


@given(st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hypothesis_ranges_concatenate_to_the_whole(served: Served, data: st.DataObject) -> None:
    client = HttpClient(served.base)
    try:
        target = f"/v1/offline?assets={TALK},{CLIP}"
        full = client.get(target)
        assert full.status == 200
        whole, etag = full.body, full.header("ETag")
        size = len(whole)
        cuts = sorted(data.draw(st.sets(st.integers(1, size - 1), max_size=8), label="cuts"))
        bounds = [0, *cuts, size]
        got = []
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
            form = data.draw(st.sampled_from(["closed", "open", "suffix", "past-end"]))
            last = i == len(bounds) - 2
            if last and form == "open":
                rng = f"bytes={a}-"
            elif last and form == "suffix":
                rng = f"bytes=-{b - a}"
            elif form == "past-end" and last:
                rng = f"bytes={a}-{size + 1000}"
            else:
                rng = f"bytes={a}-{b - 1}"
            res = client.get(target, {"Range": rng, "If-Range": etag or ""})
            assert res.status == 206, (rng, res.status)
            assert res.header("Content-Range") == f"bytes {a}-{b - 1}/{size}"
            got.append(res.body)
        assert b"".join(got) == whole
    finally:
        client.close()


def _rss_kib(pid: int) -> int:
    """Resident memory of the origin and its child processes."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return total


def test_memory_stays_flat_while_bundling_a_two_hour_asset(served: Served) -> None:
    import http.client

    def fetch(target: str, sample: list[int] | None) -> tuple[int, int]:
        conn = http.client.HTTPConnection("127.0.0.1", int(served.base.rsplit(":", 1)[1]),
                                          timeout=120)
        try:
            conn.request("GET", target)
            res = conn.getresponse()
            assert res.status == 200, res.read()[:300]
            length, got = int(res.headers["Content-Length"]), 0
            while chunk := res.read(1 << 20):
                got += len(chunk)
                if sample is not None:
                    sample.append(_rss_kib(served.pid))
            return length, got
        finally:
            conn.close()

    # Warm up: imports, buffers and caches of a small bundle, twice.
    for _ in range(2):
        fetch(f"/v1/offline?assets={TALK}", None)
    base = _rss_kib(served.pid)
    samples: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # also while the first request reads the file for its CRC
        while not stop.is_set():
            samples.append(_rss_kib(served.pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        t0 = time.monotonic()
        length, got = fetch(f"/v1/offline?assets=long-1,{TALK}", samples)  # CRC, then send
        first = time.monotonic() - t0
        t0 = time.monotonic()
        length2, got2 = fetch(f"/v1/offline?assets=long-1,{TALK}", samples)  # kept CRC
        second = time.monotonic() - t0
    finally:
        stop.set()
        watcher.join()
    size = os.path.getsize(served.root / "long-1" / "v" / "long0000002h" / "download.m4a")
    assert size > 100 << 20 and length == got == length2 == got2 > size
    growth_mib = (max(samples) - base) / 1024
    print(f"\nbundle of a 2-hour asset: {length / 2**20:.1f} MiB; origin RSS {base / 1024:.1f} MiB "
          f"before, peak growth {growth_mib:.1f} MiB over {len(samples)} samples; "
          f"{first:.2f} s first (CRC computed), {second:.2f} s repeat")
    assert growth_mib < 16, growth_mib  # the bundle is over 100 MiB


async def test_checksums_are_computed_once_then_read_from_their_sidecars(
        origin: Origin) -> None:
    from origin.offline import sources
    from origin.offline.checksums import Checksums

    _, headers, body = await origin.get(f"/v1/offline?assets={CLIP},{TALK}")
    # Another process on the same store (a fresh Checksums) reads no media to plan it.
    fresh = Checksums(origin.store)
    plan = await sources.plan_for(origin.store, [CLIP, TALK], fresh)
    assert fresh.computed == 0 and plan.etag == headers["ETag"] and plan.size == len(body)
    # A sidecar that lies about another version is not believed: the bytes are read again.
    rec = origin.record(TALK)
    side = f"{TALK}/v/{rec['version']}/offline/download.m4a.crc32.json"
    await origin.store.put_bytes(side, json.dumps(
        {"crc32": 1, "objects": [[f"{CLIP}/v/x/download.mp4", 5]]}).encode(), "application/json")
    again = Checksums(origin.store)
    plan2 = await sources.plan_for(origin.store, [CLIP, TALK], again)
    assert again.computed == 1 and plan2.etag == plan.etag
