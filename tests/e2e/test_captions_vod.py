"""End to end: the transcript of a VOD asset as captions in hls.js, dash.js and Shaka in
Chromium, each player on a bare page with its default configuration (captions_vod_drive.mjs).

Speech is made sentence by sentence with espeak-ng, so every cue's time is known exactly;
the asset is packaged by `sori package --transcript` (JSON with chapters) and served by
`sori serve`. For each player the test checks that the player offers the text track, that
the media element's TextTrack receives every cue once at the transcript's times (the HLS
rendition is segmented: a cue spanning a segment boundary is written in both segments and
must not be shown twice), and that after a seek into a sentence that sentence is the active
cue. A video asset with a transcript is checked through hls.js too (SUBTITLES on video
variants beside an AUDIO group).

Nothing is skipped: a missing tool is a failure that says what to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, SORI, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from real_clients import local_env, make_video, serve  # noqa: E402 - shared helpers
from test_transcript_support import TimedCue, as_json, timed_speech  # noqa: E402

pytestmark = pytest.mark.e2e

DRIVER = E2E_DIR / "captions_vod_drive.mjs"
SHAKA = E2E_DIR / "node_modules" / "shaka-player" / "dist" / "shaka-player.compiled.js"
TOLERANCE = 0.01  # s: a player's float arithmetic on the cue times (X-TIMESTAMP-MAP, MPD)
VIDEO_CUES = [TimedCue(0.5, 2.5, "A test pattern on the screen.", "Picture"),
              TimedCue(2.5, 5.25, "And a steady tone beneath it.", None)]


def _package(root: Path, src: Path, asset_id: str, transcript: Path) -> None:
    proc = subprocess.run([str(SORI), "package", str(src), "--id", asset_id,
                           "--transcript", str(transcript)],
                          env=local_env(root, SORI_PACKAGER_SEGMENT_DURATION="2.0"),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[TimedCue]]]:
    _check_tools()
    work = tmp_path_factory.mktemp("captions-vod")
    wav, cues = timed_speech(work / "speech")
    (work / "talk.json").write_text(as_json(cues), encoding="utf-8")
    root = work / "store"
    _package(root, wav, "talk", work / "talk.json")
    clip = make_video(work / "clip.mp4", seconds=6.0, size="320x180")
    (work / "clip.json").write_text(as_json(VIDEO_CUES), encoding="utf-8")
    _package(root, clip, "clip", work / "clip.json")
    with serve(local_env(root), work / "serve.log") as origin:
        yield origin.base, cues


def _drive(base: str, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    scenario = {"base": base, "chromium": str(CHROMIUM), "artifacts": str(ARTIFACTS),
                "shaka": str(SHAKA), "jobs": jobs}
    proc = subprocess.run(["node", str(DRIVER), json.dumps(scenario)], capture_output=True,
                          text=True, timeout=240, cwd=E2E_DIR)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"driver exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "captions-vod.json").write_text(json.dumps(result, indent=2))
    return result


def _check(job: dict[str, Any], cues: list[TimedCue], name: str) -> None:
    assert "driverError" not in job, job.get("driverError")
    assert not job["fatal"] and not job["pageErrors"], (name, job["fatal"], job["pageErrors"])
    assert job["tracks"], f"{name}: the player offers no text track"
    got = Counter((round(c["start"], 2), round(c["end"], 2), c["text"]) for c in job["cues"])
    assert not job.get("timedOut"), f"{name}: cues never all arrived: {sorted(got)}"
    for c in cues:
        matches = [k for k in got if abs(k[0] - c.start) <= TOLERANCE
                   and abs(k[1] - c.end) <= TOLERANCE and k[2] == c.text]
        assert matches, f"{name}: no cue {c.text!r} at {c.start}-{c.end} in {sorted(got)}"
        assert sum(got[k] for k in matches) == 1, f"{name}: cue {c.text!r} shown twice"
    assert len(got) == len(cues), f"{name}: unexpected cues {sorted(got)}"
    for probe, c in zip(job["active"], cues[1::2], strict=True):
        assert probe["texts"] == [c.text], (name, probe)


def test_captions_in_hlsjs_dashjs_and_shaka(served: tuple[str, list[TimedCue]]) -> None:
    base, cues = served
    hls, mpd = f"{base}/assets/talk/master.m3u8", f"{base}/assets/talk/manifest.mpd"
    probes = [round((c.start + c.end) / 2, 3) for c in cues[1::2]]
    jobs = [{"name": "hlsjs", "player": "hlsjs", "url": hls},
            {"name": "dashjs", "player": "dashjs", "url": mpd},
            {"name": "shaka-dash", "player": "shaka", "url": mpd},
            {"name": "shaka-hls", "player": "shaka", "url": hls}]
    result = _drive(base, [{**j, "expect": len(cues), "probes": probes} for j in jobs])
    for j in jobs:
        _check(result["jobs"][j["name"]], cues, j["name"])
    assert result["jobs"]["hlsjs"]["tracks"] == [{"name": "Transcript", "lang": "en",
                                                  "default": False}]
    assert [t["lang"] for t in result["jobs"]["dashjs"]["tracks"]] == ["en"]


def test_captions_of_a_video_asset_in_hlsjs(served: tuple[str, list[TimedCue]]) -> None:
    base, _cues = served
    result = _drive(base, [{"name": "hlsjs-video", "player": "hlsjs",
                            "url": f"{base}/assets/clip/master.m3u8", "expect": len(VIDEO_CUES),
                            "probes": [3.9]}])
    _check(result["jobs"]["hlsjs-video"], VIDEO_CUES, "hlsjs-video")
