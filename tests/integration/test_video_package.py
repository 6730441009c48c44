"""Packaging video with real ffmpeg: every container the library meets, portrait, odd
sizes, variable frame rate, no audio; then the bytes are checked, not the settings.

Sources are 7 s at 640x360 (two rungs: 360p and 240p) and the segment duration is 2 s,
so each rendition has four segments whose boundaries can be compared.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import m3u8
import pytest
from lxml import etree

from manifests import boxes, layout
from manifests.model import Rendition
from packager import pipeline, readback
from packager.errors import InvalidInput
from sori.config import PackagerConfig
from storage import LocalStore

SCHEMA = Path(os.environ.get("SORI_TEST_DASH_SCHEMA", "/work/shared/schemas/dash/DASH-MPD.xsd"))
SECONDS = 7
# superfast: quicker than the default preset, still with B-frames (negative CTS offsets)
CFG = dataclasses.replace(PackagerConfig(), segment_duration=2.0, x264_preset="superfast")

LAVFI_V = ["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={SECONDS}"]
LAVFI_A = ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={SECONDS}"]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

# name -> (file name, ffmpeg arguments between the inputs and the output, has audio,
#          displayed (width, height))
SOURCES: dict[str, tuple[str, list[str], bool, tuple[int, int]]] = {
    "mp4": ("clip.mp4", [*LAVFI_V, *LAVFI_A, *H264, "-c:a", "aac"], True, (640, 360)),
    # stored landscape, displayed portrait: a 90° display matrix (set on a remux below)
    "mov-portrait": ("phone.mov", [*LAVFI_V, *LAVFI_A, *H264, "-c:a", "pcm_s16le"],
                     True, (360, 640)),
    "mkv-odd-size": ("odd.mkv", [
        "-f", "lavfi", "-i", f"testsrc2=size=644x362:rate=25:duration={SECONDS}", *LAVFI_A,
        "-vf", "format=yuv444p,crop=643:361", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "flac"], True, (643, 361)),
    "webm-vp9-opus": ("clip.webm", [*LAVFI_V, *LAVFI_A, "-c:v", "libvpx-vp9", "-deadline",
                                    "realtime", "-cpu-used", "8", "-b:v", "500k",
                                    "-c:a", "libopus"], True, (640, 360)),
    "avi-mpeg4-mp3": ("clip.avi", [*LAVFI_V, *LAVFI_A, "-c:v", "mpeg4", "-q:v", "5",
                                   "-c:a", "libmp3lame"], True, (640, 360)),
    # variable frame rate: every third frame dropped, timestamps kept as they are
    "flv-vfr": ("vfr.flv", [*LAVFI_V, *LAVFI_A, "-vf", "select='not(eq(mod(n,3),1))'",
                            "-fps_mode", "vfr", *H264, "-c:a", "aac"], True, (640, 360)),
    "wmv": ("clip.wmv", [*LAVFI_V, *LAVFI_A, "-c:v", "wmv2", "-b:v", "1M", "-c:a", "wmav2"],
            True, (640, 360)),
    "m4v-no-audio": ("silent.m4v", [*LAVFI_V, *H264, "-f", "mp4"], False, (640, 360)),
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of",
                          "json", str(path)], check=True, capture_output=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video-sources")


def make_source(directory: Path, name: str) -> Path:
    filename, args, _audio, _size = SOURCES[name]
    path = directory / filename
    if path.exists():
        return path
    if name == "mov-portrait":  # ffmpeg 5.1 writes the rotation only when stream-copying
        plain = directory / "phone-unrotated.mov"
        ffmpeg(*args, str(plain))
        ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    else:
        ffmpeg(*args, str(path))
    return path


# --- checks on the packaged bytes --------------------------------------------------------

def avcc_length_size(init: bytes) -> int:
    stsd = boxes.find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    assert stsd is not None
    entry = next(boxes.iter_boxes(init, stsd.body + 8, stsd.end))
    avcc = boxes.find(init, [b"avcC"], entry.body + 78, entry.end)
    assert avcc is not None
    return (init[avcc.body + 4] & 3) + 1


def first_sample_range(seg: bytes) -> tuple[int, int, int]:
    """(moof offset, first sample offset, first sample size) of a media segment, reading
    the trun's data_offset (relative to the moof: default-base-is-moof)."""
    moof = next(b for b in boxes.iter_boxes(seg) if b.type == b"moof")
    trun = boxes.find(seg, [b"traf", b"trun"], moof.body, moof.end)
    tfhd = boxes.find(seg, [b"traf", b"tfhd"], moof.body, moof.end)
    assert trun is not None and tfhd is not None
    tfhd_flags = struct.unpack_from(">I", seg, tfhd.body)[0] & 0xFFFFFF
    assert tfhd_flags & 0x020000, "default-base-is-moof expected"
    flags = struct.unpack_from(">I", seg, trun.body)[0] & 0xFFFFFF
    assert flags & 0x1, "trun without data_offset"
    (data_offset,) = struct.unpack_from(">i", seg, trun.body + 8)
    frags = boxes.parse_fragments(seg, boxes.TrackDefaults())
    return moof.offset, moof.offset + data_offset, frags[0].first_sample_size


def nal_types(sample: bytes, length_size: int) -> list[int]:
    types, pos = [], 0
    while pos + length_size <= len(sample):
        n = int.from_bytes(sample[pos: pos + length_size], "big")
        types.append(sample[pos + length_size] & 0x1F)
        pos += length_size + n
    assert pos == len(sample), "NAL lengths do not add up to the sample size"
    return types


def check_video_rendition(asset_dir: Path, r: Rendition) -> None:
    rdir = asset_dir / r.dir
    init = (rdir / layout.INIT).read_bytes()
    length_size = avcc_length_size(init)
    iframes = m3u8.loads((rdir / layout.IFRAME_PLAYLIST).read_text())
    assert iframes.is_i_frames_only
    assert len(iframes.segments) == len(r.segments)
    for seg, entry in zip(r.segments, iframes.segments, strict=True):
        data = (rdir / layout.segment_name(seg.number)).read_bytes()
        frags = boxes.parse_fragments(data, boxes.parse_init(init).defaults)
        assert frags[0].first_is_sync, f"{r.id} segment {seg.number}: no sync sample first"
        moof_at, sample_at, size = first_sample_range(data)
        vcl = [t for t in nal_types(data[sample_at: sample_at + size], length_size)
               if 1 <= t <= 5]
        assert vcl and set(vcl) == {5}, f"{r.id} segment {seg.number}: not an IDR ({vcl})"
        # the I-frame byte range starts at the moof and covers the whole IDR sample
        length, offset = (int(x) for x in entry.byterange.split("@"))
        assert data[offset + 4: offset + 8] == b"moof" and offset == moof_at
        assert offset + length >= sample_at + size
        assert entry.uri == layout.segment_name(seg.number)


def check_shared_target(asset_dir: Path, master: m3u8.M3U8) -> None:
    """RFC 8216 §6.2.4: the video playlists and the audio-group playlist carry one
    EXT-X-TARGETDURATION, the ceiling of the longest segment of any of them; the I-frame
    playlists (exempt) keep their own, which is never more."""
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    playlists = {uri: m3u8.loads((asset_dir / uri).read_text()) for uri in uris}
    longest = max(s.duration for pl in playlists.values() for s in pl.segments)
    target = max(1, math.ceil(longest - 1e-6))
    targets = {uri: pl.target_duration for uri, pl in playlists.items()}
    assert set(targets.values()) == {target}, (targets, longest)
    for p in master.iframe_playlists:
        iframes = m3u8.loads((asset_dir / p.uri).read_text())
        assert iframes.target_duration <= target


def check_asset(root: Path, rec: dict[str, Any], src: Path, has_audio: bool,
                displayed: tuple[int, int]) -> None:
    asset_dir = root / rec["id"]
    version = rec["version"]
    assert rec["kind"] == "video" and rec["state"] == "ready"
    videos = [x for x in rec["renditions"] if x["type"] == "video"]
    audios = [x for x in rec["renditions"] if x["type"] == "audio"]
    assert videos and len(audios) == (1 if has_audio else 0)
    src_short = min(displayed)
    portrait = displayed[1] > displayed[0]
    for v in videos:
        assert v["width"] % 2 == 0 and v["height"] % 2 == 0
        assert min(v["width"], v["height"]) <= src_short
        assert (v["height"] > v["width"]) == portrait
        # the source's aspect ratio, within the rounding to even
        assert abs(v["width"] / v["height"] - displayed[0] / displayed[1]) < 0.02
    # read every rendition back from the published bytes
    reads = {x["id"]: readback.read_rendition(x["id"], asset_dir / layout.rendition_dir(
        version, x["id"]), layout.rendition_dir(version, x["id"])) for x in rec["renditions"]}
    vr = [reads[v["id"]] for v in videos]
    bounds = [[(s.start, s.duration) for s in r.segments] for r in vr]
    assert all(b == bounds[0] for b in bounds), "video renditions are not aligned"
    assert len(bounds[0]) >= 3
    for r in vr:
        assert abs(r.duration - SECONDS) < 0.2, r.duration
        check_video_rendition(asset_dir, r)
        # no near-empty trailing segment, none over the target
        assert r.seconds(r.segments[-1].duration) >= 0.25 * CFG.segment_duration
    if has_audio:
        a = reads[audios[0]["id"]]
        assert a.codecs == "mp4a.40.2" and a.sample_rate == 48000
        assert abs(a.duration - vr[0].duration) < 0.1

    master = m3u8.loads((asset_dir / layout.MASTER).read_text())
    assert len(master.playlists) == len(videos)
    for p in master.playlists:
        info = p.stream_info
        assert info.resolution and info.frame_rate and info.frame_rate > 0
        codecs = info.codecs.split(",")
        assert codecs[0].startswith("avc1.")
        if has_audio:
            assert codecs[1:] == ["mp4a.40.2"] and info.audio == "audio"
        else:
            assert len(codecs) == 1 and info.audio is None
        assert (asset_dir / p.uri).exists()
    assert len(master.iframe_playlists) == len(videos)
    media = [m for m in master.media if m.type == "AUDIO"]
    assert len(media) == (1 if has_audio else 0)
    if has_audio:
        assert (asset_dir / media[0].uri).exists()
    check_shared_target(asset_dir, master)

    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    mpd = etree.parse(str(asset_dir / layout.MPD))
    schema.assertValid(mpd)
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    sets = mpd.findall(".//d:AdaptationSet", ns)
    assert [s.get("contentType") for s in sets] == (["video", "audio"] if has_audio else ["video"])

    # poster: the top rung's size (at most 1280 wide); sprite: tiles of 160 wide
    vdir = asset_dir / layout.version_dir(version)
    top = max(videos, key=lambda v: v["width"] * v["height"])
    poster = ffprobe(vdir / layout.POSTER)["streams"][0]
    assert poster["codec_name"] == "mjpeg"
    assert (poster["width"], poster["height"]) == (top["width"], top["height"])
    sprite = ffprobe(vdir / layout.THUMBS_SPRITE)["streams"][0]
    assert sprite["codec_name"] == "mjpeg"
    assert sprite["width"] == 2 * CFG.thumbnail_width  # 7 s at 5 s: two thumbnails, one row
    track = (vdir / layout.THUMBS_VTT).read_text()
    assert track.startswith("WEBVTT")
    assert "00:00:00.000 --> 00:00:05.000\nthumbs.jpg#xywh=0,0,160," in track
    assert rec["poster"] == f"/assets/{rec['id']}/{layout.version_dir(version)}/poster.jpg"
    assert rec["thumbnails"] == f"/assets/{rec['id']}/{layout.version_dir(version)}/thumbs.vtt"

    # the download: index in front, video (+ audio), the asset's duration
    download = asset_dir / rec["download_key"]
    head = download.read_bytes()
    order = [b.type for b in boxes.iter_boxes(head)]
    assert order.index(b"moov") < order.index(b"mdat")
    probe = ffprobe(download)
    kinds = sorted(s["codec_type"] for s in probe["streams"])
    assert kinds == (["audio", "video"] if has_audio else ["video"])
    assert abs(float(probe["format"]["duration"]) - rec["duration"]) < 0.2


# --- tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SOURCES))
async def test_package_video_formats(name: str, sources: Path, local_store: LocalStore,
                                     tmp_path: Path) -> None:
    src = make_source(sources, name)
    _file, _args, has_audio, displayed = SOURCES[name]
    rec = await pipeline.package(src, local_store, CFG, asset_id=f"v-{name}")
    check_asset(tmp_path / "media", rec, src, has_audio, displayed)
    stored = json.loads((tmp_path / "media" / rec["id"] / layout.RECORD).read_text())
    assert stored["renditions"] == rec["renditions"]


async def test_small_source_keeps_one_rung_at_its_own_size(tmp_path: Path,
                                                           local_store: LocalStore) -> None:
    src = tmp_path / "tiny.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=5", *H264, str(src))
    rec = await pipeline.package(src, local_store, CFG, asset_id="tiny")
    videos = [x for x in rec["renditions"] if x["type"] == "video"]
    assert [(v["width"], v["height"]) for v in videos] == [(320, 180)]


async def test_audio_only_upload_is_an_audio_asset(tmp_path: Path,
                                                   local_store: LocalStore) -> None:
    src = tmp_path / "voice.m4a"
    ffmpeg(*LAVFI_A, "-c:a", "aac", str(src))
    rec = await pipeline.package(src, local_store, CFG, asset_id="voice")
    assert rec["kind"] == "audio" and "poster" not in rec


@pytest.mark.parametrize("damage", ["truncated", "truncated-faststart", "random"])
async def test_bad_video_is_invalid_input_and_leaves_nothing(
        damage: str, sources: Path, tmp_path: Path, local_store: LocalStore) -> None:
    bad = tmp_path / "bad.mp4"
    if damage == "random":
        bad.write_bytes(os.urandom(200_000))
    else:
        good = tmp_path / "good.mp4"
        extra = ["-movflags", "+faststart"] if damage == "truncated-faststart" else []
        ffmpeg(*LAVFI_V, *LAVFI_A, *H264, "-c:a", "aac", *extra, str(good))
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput) as err:
        await pipeline.package(bad, local_store, CFG, asset_id="bad")
    assert "bad.mp4" in str(err.value)
    root = tmp_path / "media"
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
