"""The Opus data-saver rung (issue 14) on real espeak-ng speech packaged by the real pipeline:
ffmpeg reads it, it decodes in sync with the AAC rungs and as loud, its init segment and
fragments are what the Opus-in-ISOBMFF encapsulation says, its segments start where the AAC
rungs' do, and the manifests list it after AAC (HLS) and in its own AdaptationSet (DASH).
With packager.data_saver off there is no such rung."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import m3u8
import numpy as np
import pytest
from audio_checks import check_packaged_audio
from lxml import etree

from manifests import boxes, layout
from manifests.codecs import opus_pre_skip
from packager.errors import InvalidInput, PackagerError
from packager.pipeline import package
from settings import AudioRung, PackagerConfig
from storage.local import LocalStore

TEXT = ("Welcome to sori. This sample was spoken by a machine and packaged into streams that "
        "play on phones, in browsers and behind any content delivery network. The data saver "
        "rung carries the same words in Opus, at a fraction of the bytes, for phones on slow "
        "networks. Each rendition is measured from the real bytes, so the playlists never lie.")
CFG = dataclasses.replace(PackagerConfig(), segment_duration=2.0)  # several segments
RATE = 48_000
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("saver")
    wav = base / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), TEXT], check=True)
    store = LocalStore(base / "media")

    async def run() -> dict[str, Any]:
        record = await package(wav, store, CFG, asset_id="talk", title="Talk")
        await check_packaged_audio(store, "talk", CFG.segment_duration)
        return record

    record = asyncio.run(run())
    return base / "media" / "talk", record


def version_dir(root: Path, record: dict[str, Any]) -> Path:
    return root / "v" / record["version"]


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def pcm(path: Path) -> np.ndarray[Any, Any]:
    """The rendition decoded by ffmpeg to mono float at 48 kHz."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE),
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.float32)


def lag(reference: np.ndarray[Any, Any], other: np.ndarray[Any, Any]) -> int:
    """Samples by which `other` trails `reference` (cross-correlation peak)."""
    n = min(len(reference), len(other))
    a, b = reference[:n], other[:n]
    c = np.fft.irfft(np.conj(np.fft.rfft(a, 2 * n)) * np.fft.rfft(b, 2 * n))
    c = np.concatenate([c[-n + 1:], c[:n]])
    return int(np.argmax(c)) - (n - 1)


def rms_db(x: np.ndarray[Any, Any]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


def test_record_lists_the_saver_rung_and_the_download_stays_aac(
        packaged: tuple[Path, dict[str, Any]]) -> None:
    root, record = packaged
    saver = next(r for r in record["renditions"] if r["id"] == layout.DATA_SAVER_RENDITION)
    assert saver["codecs"] == "opus" and saver["type"] == "audio"
    assert saver["sample_rate"] == 48000 and saver["channels"] == 1
    aac = [r for r in record["renditions"] if r["codecs"] == "mp4a.40.2"]
    assert len(aac) == 3 and saver["average_bandwidth"] < min(r["average_bandwidth"] for r in aac)
    # measured, and near what was asked (32 kb/s), never the nominal value itself
    assert 20_000 < saver["average_bandwidth"] < 48_000
    download = probe(root / record["download_key"])  # relative to the asset's root
    assert [s["codec_name"] for s in download["streams"]] == ["aac"]


def test_ffmpeg_decodes_it_in_sync_with_aac_and_as_loud(
        packaged: tuple[Path, dict[str, Any]]) -> None:
    root, record = packaged
    vdir = version_dir(root, record)
    info = probe(vdir / "saver" / "index.m3u8")
    (stream,) = info["streams"]
    assert stream["codec_name"] == "opus" and int(stream["sample_rate"]) == 48000
    assert stream["channels"] == 1
    opus = pcm(vdir / "saver" / "index.m3u8")
    aac = pcm(vdir / "high" / "index.m3u8")
    # durations within one 20 ms Opus frame of the 48 kHz AAC rung's
    assert abs(len(opus) - len(aac)) <= 960, (len(opus), len(aac))
    # the same words at the same media times: PreSkip is honoured, no drift (within 1 ms)
    assert abs(lag(aac, opus)) <= 48, lag(aac, opus)
    # the same loudness processing: decoded levels within 1 dB
    assert abs(rms_db(opus) - rms_db(aac)) <= 1.0, (rms_db(opus), rms_db(aac))
    # and the decoded signal is the speech, not noise: strongly correlated with AAC's
    n = min(len(opus), len(aac))
    assert float(np.corrcoef(opus[:n], aac[:n])[0, 1]) > 0.8


def test_init_segment_and_fragments(packaged: tuple[Path, dict[str, Any]]) -> None:
    root, record = packaged
    sdir = version_dir(root, record) / "saver"
    init = (sdir / layout.INIT).read_bytes()
    track = boxes.parse_init(init)
    assert track.codecs == "opus" and track.timescale == 48000 and track.channels == 1
    assert track.defaults.sample_duration == 960
    assert opus_pre_skip(init) == 312  # libopus's lookahead at 48 kHz
    assert boxes.find(init, [b"moov", b"trak", b"edts"]) is None
    expected = 0
    segments = sorted(sdir.glob("seg_*.m4s"))
    assert len(segments) >= 4
    for path in segments:
        data = path.read_bytes()
        assert next(boxes.iter_boxes(data)).type == b"styp"
        (frag,) = boxes.parse_fragments(data, track.defaults)
        assert frag.base_decode_time == expected
        assert frag.duration == frag.sample_count * 960
        expected += frag.duration


def test_segments_start_where_the_aac_segments_start(packaged: tuple[Path, dict[str, Any]]) -> None:
    root, record = packaged
    vdir = version_dir(root, record)
    starts: dict[str, list[float]] = {}
    for rid in ("low", "medium", "high", "saver"):
        track = boxes.parse_init((vdir / rid / layout.INIT).read_bytes())
        starts[rid] = [boxes.parse_fragments(p.read_bytes(), track.defaults)[0].base_decode_time
                       / track.timescale for p in sorted((vdir / rid).glob("seg_*.m4s"))]
    assert len({len(s) for s in starts.values()}) == 1, starts
    for i, at in enumerate(starts["saver"]):
        if i:  # the 2 s grid, to the nearest 20 ms packet
            assert abs(at - 2.0 * i) <= 0.010 + 1e-9
        for rid, rate in (("low", 22050), ("medium", 44100), ("high", 48000)):
            assert abs(at - starts[rid][i]) <= 512 / rate + 0.010 + 1e-9, (rid, i)


def test_manifests_list_it_after_aac_and_in_its_own_adaptation_set(
        packaged: tuple[Path, dict[str, Any]]) -> None:
    root, record = packaged
    master = m3u8.loads((root / layout.MASTER).read_text())
    rungs = [p.uri.split("/")[-2] for p in master.playlists]
    assert rungs == ["low", "medium", "high", "saver"]
    saver = master.playlists[-1].stream_info
    by_id = {r["id"]: r for r in record["renditions"]}
    assert saver.codecs == "opus"
    assert saver.bandwidth == by_id["saver"]["bandwidth"] >= saver.average_bandwidth
    seconds = sum(s.duration for s in m3u8.loads((root / master.playlists[-1].uri).read_text()).segments)
    total = sum(p.stat().st_size for p in (version_dir(root, record) / "saver").glob("seg_*.m4s"))
    assert abs(saver.average_bandwidth - 8 * total / seconds) <= 1
    mpd = etree.fromstring((root / layout.MPD).read_bytes())
    sets = mpd.findall(".//d:AdaptationSet", NS)
    assert [s.find("d:Representation", NS).get("codecs") for s in sets] == ["mp4a.40.2", "opus"]
    assert sets[1].get("mimeType") == "audio/mp4"
    assert sets[1].find("d:Role", NS).get("value") == "alternate"
    assert [r.get("id") for r in sets[1].findall("d:Representation", NS)] == ["saver"]


async def test_config_off_makes_no_saver_rung(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), TEXT[:120]], check=True)
    store = LocalStore(tmp_path / "media")
    record = await package(wav, store, dataclasses.replace(CFG, data_saver=False), asset_id="plain")
    await check_packaged_audio(store, "plain", CFG.segment_duration)
    assert [r["id"] for r in record["renditions"]] == ["low", "medium", "high"]
    assert not [k for k in await store.list("plain/") if "/saver/" in k]
    assert "opus" not in (await store.get("plain/master.m3u8")).decode()
    assert "opus" not in (await store.get("plain/manifest.mpd")).decode()


async def test_a_ladder_rung_named_like_the_saver_is_refused(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Short."], check=True)
    cfg = dataclasses.replace(CFG, audio_ladder=(AudioRung("saver", 64_000, 22_050),),
                              download_rendition="saver")
    with pytest.raises(PackagerError, match="data-saver"):
        await package(wav, LocalStore(tmp_path / "media"), cfg, asset_id="clash")
    assert not await LocalStore(tmp_path / "media").list("clash/")


async def test_bad_input_is_still_reported_as_bad_input(tmp_path: Path) -> None:
    """With loudness off the AAC encode is what checks that the input decodes; the saver's
    own encoder failing or not must not turn a corrupt input into an internal error."""
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), TEXT], check=True)
    mp3 = tmp_path / "speech.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "64k",
                    str(mp3)], check=True)
    data = bytearray(mp3.read_bytes())
    third = len(data) // 3
    data[third: third + 4000] = bytes((i * 7) % 256 for i in range(4000))
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(bytes(data))
    store = LocalStore(tmp_path / "media")
    with pytest.raises(InvalidInput, match="corrupt media"):
        await package(bad, store, dataclasses.replace(CFG, loudness=False), asset_id="bad")
    assert not await store.list("bad/")
