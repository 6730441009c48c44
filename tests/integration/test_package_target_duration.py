"""One EXT-X-TARGETDURATION per asset (RFC 8216 §6.2.4), with real ffmpeg on espeak-ng speech.

The default audio ladder resamples to 22.05, 44.1 and 48 kHz and cuts 4 s segments on each
rung's own 1024-sample AAC frames, so a segment is 3.99 s on one rung and 4.01 or 4.04 s on
another: each rung's own ceiling would be 4 on one and 5 on the others. Every media playlist
must still say the same target, the ceiling of the longest segment of any rendition.

Speech of three lengths (a single segment, a few, and the brief's 15 s case) at four input
sample rates, packaged with the default configuration except loudness (not what is tested
here, and a second ffmpeg pass per asset).
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
from pathlib import Path

import m3u8
import pytest
from audio_checks import check_packaged_audio

from packager.pipeline import package
from sori.config import PackagerConfig
from storage.local import LocalStore

CFG = dataclasses.replace(PackagerConfig(), loudness=False)
TEXT = ("Welcome to sori. This sample was spoken by a machine and packaged into streams "
        "that play on phones, in browsers and behind any content delivery network. "
        "Each rendition is measured from the real bytes, so the playlists never lie. "
        "Every media playlist of one asset carries the same target duration, whatever "
        "the sample rate of its rendition and wherever its last frame happens to end.")
LENGTHS = (3.0, 9.0, 15.0)  # seconds of speech cut from the start
RATES = (16000, 22050, 44100, 48000)  # input sample rates


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(out), TEXT], check=True)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                            "-of", "csv=p=0", str(out)], check=True, capture_output=True,
                           text=True).stdout
    assert float(probe) > max(LENGTHS) + 1, f"espeak-ng made only {probe} s"
    return out


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("seconds", LENGTHS)
async def test_every_media_playlist_shares_one_target(seconds: float, rate: int,
                                                      long_speech: Path, tmp_path: Path
                                                      ) -> None:
    src = tmp_path / f"speech_{rate}.wav"
    ffmpeg("-i", str(long_speech), "-t", str(seconds), "-ar", str(rate), "-ac", "1",
           "-c:a", "pcm_s16le", str(src))
    store = LocalStore(tmp_path / "media")
    record = await package(src, store, CFG, asset_id="talk")
    # the AAC ladder and the Opus data-saver rung (issue 14), whose segments count too
    assert [r["sample_rate"] for r in record["renditions"]] == [22050, 44100, 48000, 48000]
    # master, every media playlist (same target == ceil(longest)), segments, DASH XSD
    summary = await check_packaged_audio(store, "talk", CFG.segment_duration)
    target = summary["target"]
    assert target == math.ceil(summary["longest"] - 1e-6)
    # a segment overruns the configured duration by less than one AAC frame at most
    assert target <= math.ceil(CFG.segment_duration) + 1

    # read the playlists straight from disk too: one tag each, and which rung would have
    # said less on its own (the per-rendition target this replaced)
    base = tmp_path / "media" / "talk"
    master = m3u8.loads((base / "master.m3u8").read_text())
    own: dict[str, int] = {}
    for variant in master.playlists:
        text = (base / variant.uri).read_text()
        assert f"#EXT-X-TARGETDURATION:{target}\n" in text
        pl = m3u8.loads(text)
        assert all(s.duration <= target for s in pl.segments)
        own[variant.uri.split("/")[-2]] = math.ceil(max(s.duration for s in pl.segments) - 1e-6)
    assert max(own.values()) == target
    if seconds >= 2 * CFG.segment_duration:
        # several full 4 s segments: the 22.05 kHz rung stays at 3.994 s while the 48 kHz one
        # alternates 187 and 188 frames (3.989 / 4.011 s), so the rungs' own ceilings differ
        # and the shared target is 5. This guards the test against passing vacuously.
        aac = [v for rung, v in own.items() if rung != "saver"]
        assert sorted(aac) == [4, 5, 5] and target == 5, own
        # the Opus data-saver rung (issue 14): 20 ms packets fall on the 4 s grid, so its
        # full segments are 4 s exactly and only its last may run past (by its padding)
        assert own["saver"] <= target, own
