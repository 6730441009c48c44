"""End to end for video: one source per container, packaged by `sori package`, served by
`sori serve`, played by Chromium through hls.js on the player page.

ffmpeg makes eight short clips (testsrc2 + a sine tone), one per container with a codec
typical of it: a portrait one (landscape pixels with a 90° display matrix), an odd-sized
one and one without audio among them. They are packaged with a small, fast ladder into
one temporary store, two CLI runs at a time. `drive.mjs` (mode "video") plays each through
the page and reports the decoder counters (`getVideoPlaybackQuality()`) at the start, after
the first second and after a steady run; the assertions are here. It also checks the
gallery's posters and the seek bar's sprite preview. Screenshots go to `test-artifacts/`.

Nothing is skipped: a missing tool is a failure that says what to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_player import ARTIFACTS, REPO, _assert_all_passed, _check_tools, _drive

sys.path.append(str(REPO / "tests" / "integration"))
from real_clients import local_env, package, require_tool, serve  # noqa: E402 - shared helpers

pytestmark = pytest.mark.e2e

SECONDS = 8
STEADY = 3  # seconds of measured playback per asset, after the first second
LADDER = [  # small and quick: the point here is the browser, not the encoder
    {"id": "270p", "height": 270, "bitrate": 400_000, "profile": "main"},
    {"id": "180p", "height": 180, "bitrate": 200_000, "profile": "baseline"},
]
PACKAGER_ENV = {
    "SORI_PACKAGER_VIDEO_LADDER": json.dumps(LADDER),
    "SORI_PACKAGER_SEGMENT_DURATION": "2",
    "SORI_PACKAGER_X264_PRESET": "ultrafast",
    "SORI_PACKAGER_THUMBNAIL_INTERVAL": "1",
}


def _video(size: str) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={SECONDS}"]


def _tone(rate: int = 48_000) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={SECONDS}"]


H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True)
class Source:
    id: str
    file: str
    args: list[str]  # ffmpeg arguments before the output file
    audio: bool = True
    portrait: bool = False
    rotate: int = 0  # display rotation written on a stream-copy remux (ffmpeg 5.1 needs that)


SOURCES = [
    Source("mp4-h264-aac", "clip.mp4", [*_video("480x270"), *_tone(), *H264, "-c:a", "aac"]),
    # stored 480x270, displayed 270x480: a phone video held upright
    Source("mov-portrait", "phone.mov", [*_video("480x270"), *_tone(), *H264, "-c:a", "aac"],
           portrait=True, rotate=90),
    # odd in both dimensions (323x181): 4:4:4 VP9 (profile 1) stores it; testsrc2 alone
    # would round a 4:2:0 picture down to even sizes
    Source("mkv-odd-vp9-opus", "odd.mkv", [
        *_video("324x182"), *_tone(), "-vf", "format=yuv444p,crop=323:181", "-c:v", "libvpx-vp9", "-deadline", "realtime",
        "-cpu-used", "8", "-b:v", "300k", "-c:a", "libopus"]),
    Source("webm-vp8-vorbis", "clip.webm", [
        *_video("480x270"), *_tone(), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used",
        "8", "-b:v", "500k", "-c:a", "libvorbis"]),
    Source("avi-mpeg4-mp3", "clip.avi", [*_video("480x270"), *_tone(44_100), "-c:v", "mpeg4",
                                         "-q:v", "5", "-c:a", "libmp3lame"]),
    Source("flv-flv1-mp3", "clip.flv", [*_video("480x270"), *_tone(44_100), "-c:v", "flv",
                                        "-q:v", "5", "-c:a", "libmp3lame"]),
    Source("wmv-wmv2-wmav2", "clip.wmv", [*_video("480x270"), *_tone(44_100), "-c:v", "wmv2",
                                          "-b:v", "800k", "-c:a", "wmav2"]),
    Source("m4v-silent", "silent.m4v", [*_video("480x270"), *H264, "-f", "mp4"], audio=False),
]
BY_ID = {s.id: s for s in SOURCES}
ODD = "mkv-odd-vp9-opus"
THUMBS = ["mp4-h264-aac", "mov-portrait"]  # seek-bar previews hovered: landscape, portrait


def _ffmpeg(*args: str) -> None:
    proc = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                           *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"ffmpeg {' '.join(args)} failed:\n{proc.stderr}"


def _make(work: Path, src: Source) -> Path:
    path = work / src.file
    if src.rotate:
        plain = work / f"unrotated-{src.file}"
        _ffmpeg(*src.args, str(plain))
        _ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={src.rotate}",
                str(path))
    else:
        _ffmpeg(*src.args, str(path))
    return path


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as res:
        body: bytes = res.read()
        return body


def _record(base: str, asset_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(_get(f"{base}/v1/assets/{asset_id}"))
    return record


def _video_sizes(record: dict[str, Any]) -> list[tuple[int, int]]:
    """(width, height) of the video renditions, tallest first."""
    return sorted(((r["width"], r["height"]) for r in record["renditions"]
                   if r.get("type", "video") == "video" and r.get("width")),
                  key=lambda wh: wh[1], reverse=True)


# ---- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every source made by ffmpeg and packaged by the CLI into one fresh local store."""
    _check_tools()
    require_tool("ffmpeg", "apt-get install ffmpeg (`make demo` does)")
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("e2e-video")
    store_root = work / "store"
    env = local_env(store_root, **PACKAGER_ENV)  # the caller's SORI_* settings left out
    with ThreadPoolExecutor(4) as pool:
        paths = dict(zip(BY_ID, pool.map(lambda s: _make(work, s), SOURCES), strict=True))
    with ThreadPoolExecutor(2) as pool:  # two packaging runs at once: they share two cores
        jobs = [pool.submit(package, env, paths[s.id], s.id, f"{s.file} test clip")
                for s in SOURCES]
        for job in jobs:
            job.result()
    return {"root": store_root, "work": work, "ids": list(BY_ID)}


@pytest.fixture(scope="module")
def origin(videos: dict[str, Any]) -> Iterator[str]:
    with serve(local_env(videos["root"]), videos["work"] / "serve.log") as running:
        yield running.base


@pytest.fixture(scope="module")
def played(origin: str, videos: dict[str, Any]) -> dict[str, Any]:
    """One browser run over every video asset (the slow part, shared by the tests below)."""
    result = _drive({"base": origin, "mode": "video", "videos": videos["ids"],
                     "steady": STEADY, "thumbs": THUMBS})
    report = {i: {k: v["to"][k] - v["from"][k] for k in ("total", "dropped", "t")}
              for i, v in result.get("videos", {}).items()}
    (ARTIFACTS / "video-playback.json").write_text(json.dumps(report, indent=2))
    return result


# ---- tests -----------------------------------------------------------------------------


def test_every_container_packages_as_video(origin: str, videos: dict[str, Any]) -> None:
    for src in SOURCES:
        rec = _record(origin, src.id)
        assert rec["kind"] == "video" and rec["state"] == "ready", (src.id, rec)
        assert abs(rec["duration"] - SECONDS) < 0.5, (src.id, rec["duration"])
        assert rec["poster"] and rec["thumbnails"], (src.id, rec)
        sizes = _video_sizes(rec)
        assert sizes, (src.id, rec["renditions"])
        if src.portrait:
            assert all(w < h for w, h in sizes), (src.id, sizes)
        master = _get(f"{origin}{rec['hls']}").decode()
        has_group = "#EXT-X-MEDIA:TYPE=AUDIO" in master
        assert has_group == src.audio, f"{src.id}: audio group {has_group}:\n{master}"
        if not src.audio:
            assert "EXT-X-MEDIA" not in master, master


def test_every_format_plays_in_chromium_without_dropping_frames(
        played: dict[str, Any], origin: str) -> None:
    _assert_all_passed(played)
    for src in SOURCES:
        m = played["videos"].get(src.id)
        assert m, f"the driver did not play {src.id}"
        start, first, last = m["start"], m["from"], m["to"]
        assert last["total"] > first["total"] >= start["total"] >= 0, (src.id, m)
        # 25 fps: a frame decoded for every 40 ms the clock moved (none missing in the stream)
        decoded, advanced = last["total"] - first["total"], last["t"] - first["t"]
        assert abs(decoded - 25 * advanced) <= 3, (src.id, decoded, advanced)
        assert last["dropped"] == first["dropped"], (src.id, m)
        assert last["corrupted"] == 0, (src.id, m)
        assert last["t"] - first["t"] > 0.8 * STEADY, (src.id, m)
        rec = _record(origin, src.id)
        sizes = _video_sizes(rec)
        shown = (last["width"], last["height"])
        assert shown in sizes, f"{src.id}: decoded {shown}, packaged {sizes}"
        if src.portrait:
            assert shown[0] < shown[1], (src.id, shown)
        if src.id == ODD:
            assert shown == sizes[0], f"{src.id}: decoded {shown}, top rung {sizes[0]}"
        if src.audio:
            assert last["audioTracks"] >= 1 and last["audioBytes"] > 0, (src.id, last)
        else:
            assert last["audioTracks"] == 0 and not last["audioBytes"], (src.id, last)


def test_gallery_posters_and_seek_bar_thumbnails(played: dict[str, Any], origin: str) -> None:
    _assert_all_passed(played)
    posters = {c["id"]: c for c in played["gallery"]}
    assert sorted(posters) == sorted(BY_ID)
    for asset_id, card in posters.items():
        assert card["src"] == _record(origin, asset_id)["poster"], card
        assert card["loaded"] and card["naturalWidth"] > 0, card
    assert posters[BY_ID["mov-portrait"].id]["naturalWidth"] < \
        posters[BY_ID["mov-portrait"].id]["naturalHeight"], posters["mov-portrait"]
    for asset_id in THUMBS:
        preview = played["previews"][asset_id]
        rec = _record(origin, asset_id)
        sheet = preview["sheet"]
        assert preview["visible"] and sheet["width"] > 0, preview
        assert sheet["url"].startswith(f"{origin}/assets/{asset_id}/"), preview
        assert preview["thumbnails"] == rec["thumbnails"], preview
        # one tile of the sheet, shaped like the picture
        w, h = preview["boxWidth"], preview["boxHeight"]
        assert 0 < w <= sheet["width"] and 0 < h <= sheet["height"], preview
        assert (w < h) == BY_ID[asset_id].portrait, preview
    shots = ["video-gallery", *(f"video-thumbnail-{i}" for i in THUMBS),
             *(f"video-playing-{i}" for i in BY_ID)]
    for shot in shots:
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 1000, shot


if __name__ == "__main__":  # pragma: no cover - convenience: python tests/e2e/test_video_playback.py
    sys.exit(pytest.main([__file__, "-v"]))
