"""Real ffmpeg on real espeak-ng speech: every input format packages into a complete asset,
into both stores, and every bad input is refused with exit 2 leaving the store unchanged."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from audio_checks import check_packaged_audio, moov_before_mdat

from packager.errors import InvalidInput
from packager.pipeline import package
from sori.config import Config, PackagerConfig
from storage.base import Store
from storage.local import LocalStore

SORI = [sys.executable, "-m", "sori"]
TEXT = ("Welcome to sori. This sample was spoken by a machine and packaged into streams "
        "that play on phones, in browsers and behind any content delivery network. "
        "Each rendition is measured from the real bytes, so the playlists never lie.")
# short segments so that a short sample still has several of them
CFG = dataclasses.replace(PackagerConfig(), segment_duration=2.0)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(out), TEXT], check=True)
    return out


# (file name, ffmpeg output options): WAV at several rates/depths/layouts and every
# compressed format a TTS pipeline or an uploader produces
FORMATS = {
    "s16_22k_mono.wav": ["-ar", "22050", "-ac", "1", "-c:a", "pcm_s16le"],
    "s24_48k_stereo.wav": ["-ar", "48000", "-ac", "2", "-c:a", "pcm_s24le"],
    "s32_16k_mono.wav": ["-ar", "16000", "-ac", "1", "-c:a", "pcm_s32le"],
    "f32_44k_stereo.wav": ["-ar", "44100", "-ac", "2", "-c:a", "pcm_f32le"],
    "speech.mp3": ["-c:a", "libmp3lame", "-b:a", "96k"],
    "speech.m4a": ["-c:a", "aac", "-b:a", "96k"],
    "speech.aac": ["-c:a", "aac", "-b:a", "96k", "-f", "adts"],
    "speech.ogg": ["-c:a", "libvorbis", "-q:a", "4"],
    "speech.opus": ["-c:a", "libopus", "-b:a", "48k"],
    "speech.flac": ["-c:a", "flac"],
    "speech.webm": ["-c:a", "libopus", "-b:a", "48k", "-f", "webm"],
}


@pytest.mark.parametrize("name", sorted(FORMATS))
async def test_every_input_format_packages(name: str, speech: Path, tmp_path: Path) -> None:
    src = tmp_path / name
    ffmpeg("-i", str(speech), *FORMATS[name], str(src))
    store = LocalStore(tmp_path / "media")
    seen: list[float] = []
    record = await package(src, store, CFG, asset_id="talk", title="Talk",
                           progress=lambda f, phase: seen.append(f))
    summary = await check_packaged_audio(store, "talk", CFG.segment_duration)
    assert record == summary["record"]
    # the AAC ladder, then the Opus data-saver rung (on by default, issue 14)
    assert [r["id"] for r in record["renditions"]] == ["low", "medium", "high", "saver"]
    assert [r["sample_rate"] for r in record["renditions"]] == [22050, 44100, 48000, 48000]
    assert [r["codecs"] for r in record["renditions"]] == ["mp4a.40.2"] * 3 + ["opus"]
    assert abs(record["duration"] - record["source"]["duration"]) < 0.1
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert next(iter(summary["segments"].values())) >= 4
    download = await store.get(f"talk/{record['download_key']}")
    assert moov_before_mdat(download)


async def test_both_stores_get_the_same_asset(store: Store, speech: Path) -> None:
    record = await package(speech, store, CFG, asset_id="both")
    await check_packaged_audio(store, "both", CFG.segment_duration)
    keys = await store.list("both/")
    assert "both/asset.json" in keys and "both/master.m3u8" in keys
    assert all(k.startswith(f"both/v/{record['version']}/") for k in keys
               if k not in ("both/asset.json", "both/master.m3u8", "both/manifest.mpd"))


async def test_loudness_reaches_target_on_every_rendition(speech: Path, tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    ffmpeg("-i", str(speech), "-af", "volume=-14dB", str(quiet))  # about -34 LUFS
    store = LocalStore(tmp_path / "media")
    record = await package(quiet, store, CFG, asset_id="quiet")
    assert record["loudness"]["input_integrated"] < -30
    base = tmp_path / "media" / "quiet" / "v" / record["version"]
    for rung in ("low", "medium", "high", "saver"):
        out = subprocess.run(
            ["ffmpeg", "-nostats", "-hide_banner", "-i", str(base / rung / "index.m3u8"),
             "-af", "ebur128=peak=true", "-f", "null", "-"],
            capture_output=True, text=True, check=True).stderr
        integrated = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", out)[-1])
        peak = float(re.findall(r"Peak:\s+(-?[\d.]+) dBFS", out)[-1])
        assert abs(integrated - (-16.0)) <= 1.0, (rung, integrated)
        assert peak <= -1.0, (rung, peak)


async def test_loudness_can_be_turned_off(speech: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    cfg = dataclasses.replace(CFG, loudness=False)
    record = await package(speech, store, cfg, asset_id="raw")
    assert "loudness" not in record
    await check_packaged_audio(store, "raw", cfg.segment_duration)


async def test_repackaging_writes_a_new_version(speech: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    first = await package(speech, store, CFG, asset_id="again")
    first_objects = {k: (await store.stat(k)).etag for k in await store.list("again/v/")}
    second = await package(speech, store, CFG, asset_id="again")
    assert second["version"] != first["version"]
    assert second["created"] == first["created"]
    master = (await store.get("again/master.m3u8")).decode()
    assert f"v/{second['version']}/" in master and f"v/{first['version']}/" not in master
    for key, etag in first_objects.items():  # immutable objects were never rewritten
        assert (await store.stat(key)).etag == etag
    third = await package(speech, store, CFG, asset_id="again")  # keep_versions = 2
    versions = await store.list_dirs("again/v/")
    assert versions == sorted([second["version"], third["version"]])


def run_cli(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SORI_STORAGE_ROOT": str(root)}
    return subprocess.run([*SORI, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_prints_the_id_last_and_json(speech: Path, tmp_path: Path) -> None:
    root = tmp_path / "media"
    done = run_cli("package", str(speech), "--id", "cli-1", "--title", "CLI", root=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "cli-1"
    done = run_cli("package", str(speech), "--id", "cli-2", "--json", root=root)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["id"] == "cli-2" and record["hls"] == "/assets/cli-2/master.m3u8"
    assert record == json.loads((root / "cli-2" / "asset.json").read_text())


def _bad_inputs(speech: Path, d: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, a fragment the error line must contain)."""
    d.mkdir()
    empty = d / "empty.wav"
    empty.write_bytes(b"")
    text = d / "notes.wav"
    text.write_text("this is not audio\n" * 100)
    garbage = d / "noise.mp3"
    # Seeded: now and then a draw of random bytes holds enough MP3 frame headers in a row
    # for ffprobe to call it MP3 (with no duration: another, also clear, error).
    garbage.write_bytes(random.Random(2).randbytes(50_000))
    truncated = d / "truncated.wav"
    truncated.write_bytes(speech.read_bytes()[: speech.stat().st_size // 3])
    cut_mp3 = d / "cut.m4a"
    ffmpeg("-i", str(speech), "-c:a", "aac", str(d / "whole.m4a"))
    cut_mp3.write_bytes((d / "whole.m4a").read_bytes()[:3000])
    silent_video = d / "video_only.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=2", "-c:v", "mpeg4",
           str(silent_video))
    return {
        "missing": (d / "nope.wav", "no such file"),
        "directory": (d, "not a regular file"),
        "empty": (empty, "empty"),
        "text": (text, "not a media file"),
        "garbage": (garbage, "not a media file"),
        "truncated": (truncated, "truncated"),
        "cut": (cut_mp3, ""),
        "no_audio": (silent_video, "no audio"),
    }


def test_bad_inputs_exit_2_and_leave_the_store_unchanged(speech: Path, tmp_path: Path) -> None:
    root = tmp_path / "media"
    ok = run_cli("package", str(speech), "--id", "keep", root=root)
    assert ok.returncode == 0, ok.stderr
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for name, (path, fragment) in _bad_inputs(speech, tmp_path / "bad").items():
        kind = ["--kind", "audio"] if name == "no_audio" else []
        done = run_cli("package", str(path), "--id", f"bad-{name}", *kind, root=root)
        assert done.returncode == 2, (name, done.returncode, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (name, done.stderr)
        assert fragment.lower() in lines[0].lower(), (name, lines[0])
        assert "Traceback" not in done.stderr
        assert sorted(p.relative_to(root) for p in root.rglob("*")) == before, name


def test_overlong_input_is_refused(speech: Path, tmp_path: Path) -> None:
    env_root = tmp_path / "media"
    env = {**os.environ, "SORI_STORAGE_ROOT": str(env_root), "SORI_PACKAGER_MAX_DURATION": "5"}
    done = subprocess.run([*SORI, "package", str(speech), "--id", "long"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "max_duration" in done.stderr
    assert not env_root.exists() or not any(env_root.rglob("*.json"))


@pytest.mark.parametrize("bad_id", ["../etc", "a/b", "-lead", "", "x" * 129, "sp ace", "ü"])
def test_invalid_ids_exit_2(bad_id: str, speech: Path, tmp_path: Path) -> None:
    done = run_cli("package", str(speech), f"--id={bad_id}", root=tmp_path / "media")
    assert done.returncode == 2
    assert "invalid asset id" in done.stderr
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*"))


async def test_invalid_input_raises_domain_error(tmp_path: Path) -> None:
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty"):
        await package(empty, LocalStore(tmp_path / "m"), Config().packager)
