"""ffmpeg as a client of the origin: every rendition of a packaged asset decodes end to end
through the HLS multivariant playlist and through the MPD (ffmpeg's hls and dash demuxers,
over HTTP from `sori serve`), with no error, to the asset's duration; the progressive
download probes with its index in front.

Assets (real_clients.library): real espeak-ng speech (about 16 s) and a small video
(testsrc + sine, 8 s, 640x360), each packaged by the `sori package` CLI, into the local
store and into the S3 store (a bucket of the session's moto server), each served by
`sori serve` as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest
from audio_checks import moov_before_mdat
from real_clients import (
    ASSET_IDS,
    KINDS,
    HttpClient,
    Library,
    Origin,
    local_env,
    package_all,
    s3_env,
    serve,
)

TOLERANCE = 0.1  # seconds between the decoded and the asset's duration
DECODE_TIMEOUT = 60


@dataclass
class Served:
    store: str
    origin: Origin
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> asset record


@pytest.fixture(scope="module", params=["local", "s3"])
def served(request: pytest.FixtureRequest, lib: Library,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`sori serve` over the session's local library, and over a fresh bucket into which
    the CLI packaged the same sources."""
    work = tmp_path_factory.mktemp(f"clients-{request.param}")
    bucket = f"sori-clients-{uuid.uuid4().hex[:12]}"
    if request.param == "local":
        env = local_env(lib.root)
    else:
        s3 = request.getfixturevalue("s3_server")
        env = s3_env(s3, bucket)
        package_all(env, lib.sources)
    try:
        with serve(env, work / "serve.log") as origin:
            result = Served(request.param, origin)
            client = HttpClient(origin.base)
            for kind in KINDS:
                res = client.get(f"/v1/assets/{ASSET_IDS[kind]}")
                assert res.status == 200, res.body
                result.records[kind] = json.loads(res.body)
                assert result.records[kind]["kind"] == kind
            client.close()
            yield result
    finally:
        if request.param == "s3":
            asyncio.run(request.getfixturevalue("s3_server").drop_bucket(bucket))


# --- ffmpeg helpers --------------------------------------------------------------------


@dataclass
class Decoded:
    media_type: str
    time_base: Fraction
    frames: int = 0
    first: int | None = None
    end: int = 0
    dimensions: str | None = None
    sample_rate: int | None = None

    @property
    def duration(self) -> float:
        return float((self.end - (self.first or 0)) * self.time_base)


def decode(url: str, maps: list[str]) -> dict[int, Decoded]:
    """Decode the mapped streams of `url` to `framecrc` (every frame's pts and duration),
    asserting ffmpeg exits 0 and prints nothing at `-v error`."""
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", url]
    for m in maps:
        args += ["-map", m]
    proc = subprocess.run([*args, "-f", "framecrc", "-"], capture_output=True, text=True,
                          timeout=DECODE_TIMEOUT)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    streams: dict[int, Decoded] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(": ")
            name, _, index = key.partition(" ")
            if not index.isdigit():
                continue
            i = int(index)
            if name == "tb":
                streams[i] = Decoded("", Fraction(value))
            elif name == "media_type":
                streams[i].media_type = value
            elif name == "dimensions":
                streams[i].dimensions = value
            elif name == "sample_rate":
                streams[i].sample_rate = int(value)
            continue
        cols = [c.strip() for c in line.split(",")]
        s = streams[int(cols[0])]
        pts, duration = int(cols[2]), int(cols[3])
        s.frames += 1
        s.first = pts if s.first is None else min(s.first, pts)
        s.end = max(s.end, pts + duration)
    assert streams and all(s.frames for s in streams.values()), f"nothing decoded from {url}"
    return streams


def probe(url: str, entries: str) -> dict[str, Any]:
    proc = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries", entries,
                           url], capture_output=True, text=True, timeout=DECODE_TIMEOUT)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"ffprobe {url} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _assert_duration(what: str, decoded: Decoded, expected: float) -> None:
    assert abs(decoded.duration - expected) <= TOLERANCE, (
        f"{what}: decoded {decoded.duration:.3f} s of {decoded.media_type} "
        f"({decoded.frames} frames), the asset lasts {expected:.3f} s")


def _video(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in rec["renditions"] if r.get("type", "video") == "video" and "width" in r]


def _audio(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in rec["renditions"] if r not in _video(rec)]


# --- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_ffmpeg_decodes_every_hls_variant(served: Served, kind: str) -> None:
    rec = served.records[kind]
    url = f"{served.origin.base}/assets/{rec['id']}/master.m3u8"
    variants = _video(rec) if kind == "video" else _audio(rec)
    programs = probe(url, "program=program_id")["programs"]
    assert len(programs) == len(variants), (
        f"ffmpeg sees {len(programs)} variants in {url}, the asset has {len(variants)}")
    seen_video, seen_rates = set(), set()
    for n in range(len(programs)):
        streams = decode(url, [f"0:p:{n}"])
        types = sorted(s.media_type for s in streams.values())
        assert types == (["audio", "video"] if kind == "video" else ["audio"]), (
            f"variant {n} of {url} has {types}")
        for s in streams.values():
            _assert_duration(f"HLS variant {n} of {rec['id']} ({served.store})", s,
                             rec["duration"])
            if s.media_type == "video":
                seen_video.add(s.dimensions)
            else:
                seen_rates.add(s.sample_rate)
    if kind == "video":
        assert seen_video == {f"{r['width']}x{r['height']}" for r in variants}
    else:
        assert seen_rates == {r["sample_rate"] for r in variants}


@pytest.mark.parametrize("kind", KINDS)
def test_ffmpeg_decodes_every_dash_representation(served: Served, kind: str) -> None:
    rec = served.records[kind]
    url = f"{served.origin.base}/assets/{rec['id']}/manifest.mpd"
    streams = probe(url, "stream=index,codec_type,width,height,sample_rate")["streams"]
    assert len(streams) == len(rec["renditions"]), (
        f"ffmpeg sees {len(streams)} representations in {url}, "
        f"the asset has {len(rec['renditions'])}")
    for n, stream in enumerate(streams):
        (decoded,) = decode(url, [f"0:{stream['index']}"]).values()
        assert decoded.media_type == stream["codec_type"]
        _assert_duration(f"DASH representation {n} of {rec['id']} ({served.store})", decoded,
                         rec["duration"])
    assert sorted(f"{s.get('width')}x{s.get('height')}" for s in streams
                  if s["codec_type"] == "video") == sorted(
        f"{r['width']}x{r['height']}" for r in _video(rec))


@pytest.mark.parametrize("kind", KINDS)
def test_ffprobe_reads_the_download(served: Served, kind: str) -> None:
    rec = served.records[kind]
    url = served.origin.base + rec["download"]
    info = probe(url, "format=duration:stream=codec_type")
    assert abs(float(info["format"]["duration"]) - rec["duration"]) <= TOLERANCE, info
    types = sorted(s["codec_type"] for s in info["streams"])
    assert types == (["audio", "video"] if kind == "video" else ["audio"]), types
    res = HttpClient(served.origin.base).get(rec["download"])
    assert res.status == 200
    assert moov_before_mdat(res.body), "the download's index (moov) is not in front of mdat"
