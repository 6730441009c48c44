"""The Opus data-saver rung (issue 14) in Chromium: hls.js and dash.js, on a bare page with
their default configurations, over a real asset packaged by `sori package` and served by
`sori serve`.

What is proven, one Chromium run (saver_drive.mjs) for every case:
- hls.js plays the saver level when a listener forces it (hls.currentLevel), decoding Opus
  from sori's CMAF (time advances, audio bytes decoded, no error) and fetching only saver/;
- dash.js plays the Opus AdaptationSet when its initial track settings ask for the Role the
  MPD gives it (alternate), and starts on the AAC set by default;
- hls.js with the default configuration starts on the Opus level and stays in that codec set
  (its start-tier choice, see docs/data-saver.md) — pinned here so that a new hls.js which
  changes it is noticed; with `audioPreference: {audioCodec: "mp4a.40.2"}` it starts on AAC;
- a listener switching from the Opus level to an AAC level mid-play keeps playing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from real_clients import local_env, make_speech, package, serve  # noqa: E402

pytestmark = pytest.mark.e2e

DRIVER = E2E_DIR / "saver_drive.mjs"
SECONDS = 5.0  # media seconds every job must play
SPEECH = (
    "A listener on a slow train opens this recording on a phone. The player may start on the "
    "data saver rung, which carries the same words in Opus at a fraction of the bytes, or on "
    "the ordinary AAC rungs, which every device decodes. Either way the words arrive in order, "
    "and time moves on without a stall."
)
ASSET = "saver-talk"

JOBS: list[dict[str, Any]] = [
    {"name": "hls-forced-saver", "player": "hlsjs", "force": "saver"},
    {"name": "hls-default", "player": "hlsjs"},
    {"name": "hls-prefer-aac", "player": "hlsjs",
     "config": {"audioPreference": {"audioCodec": "mp4a.40.2"}}},
    {"name": "hls-switch-to-aac", "player": "hlsjs", "switchTo": {"codec": "mp4a", "after": 1.5}},
    {"name": "dash-default", "player": "dashjs"},
    {"name": "dash-forced-saver", "player": "dashjs", "force": "saver"},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _check_tools()
    base = tmp_path_factory.mktemp("saver")
    wav = make_speech(base / "speech.wav", SPEECH, minimum=12.0)
    env = local_env(base / "store")
    package(env, wav, ASSET)
    with serve(env, base / "serve.log") as origin:
        scenario = {"base": origin.base, "id": ASSET, "chromium": str(CHROMIUM),
                    "artifacts": str(ARTIFACTS), "seconds": SECONDS, "jobs": JOBS}
        proc = subprocess.run(["node", str(DRIVER), json.dumps(scenario)], capture_output=True,
                              text=True, timeout=240, cwd=E2E_DIR)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, (
        f"saver_drive.mjs exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    jobs: dict[str, Any] = json.loads(lines[-1])["jobs"]
    for name, job in jobs.items():
        assert "driverError" not in job, f"{name}: {job['driverError']}"
        assert not job["pageErrors"], f"{name}: {job['pageErrors']}"
    return jobs


def _played_cleanly(job: dict[str, Any]) -> None:
    assert job["played"] and not job["fatal"], (job["now"], job["fatal"])
    assert not job["now"]["paused"] and job["now"]["t"] >= SECONDS
    assert job["now"]["decodedBytes"] > 0  # Chromium's count of audio bytes it decoded


def _rungs(job: dict[str, Any]) -> set[str]:
    """Renditions whose media segments the page fetched."""
    return {s.split("/")[0] for s in job["now"]["segments"] if s.endswith(".m4s")}


def _level(job: dict[str, Any], index: int) -> dict[str, Any]:
    return next(lv for lv in job["levels"] if lv["index"] == index)


def test_hlsjs_plays_the_saver_level_when_forced(runs: dict[str, Any]) -> None:
    job = runs["hls-forced-saver"]
    _played_cleanly(job)
    forced = job["forced"]
    assert forced >= 0 and _level(job, forced)["audioCodec"] == "opus"
    assert job["switched"] == [forced] and {f["level"] for f in job["frags"]} == {forced}
    assert job["codecs"] == ["opus"]  # the SourceBuffer hls.js created
    assert _rungs(job) == {"saver"}


def test_hlsjs_default_start_tier(runs: dict[str, Any]) -> None:
    """hls.js 1.7's own choice: AAC is the first variant listed (its firstLevel), yet with
    equal codec preferences its start tier is the codec set of the lowest-bitrate level, the
    Opus one, and its ABR never leaves that codec set. Pinned (docs/data-saver.md)."""
    job = runs["hls-default"]
    _played_cleanly(job)
    first = _level(job, job["firstLevel"])
    assert first["audioCodec"] == "mp4a.40.2"  # the master lists AAC first
    assert job["codecs"] == ["opus"] and _rungs(job) == {"saver"}


def test_hlsjs_with_an_aac_preference_starts_on_aac(runs: dict[str, Any]) -> None:
    job = runs["hls-prefer-aac"]
    _played_cleanly(job)
    assert job["codecs"] == ["mp4a.40.2"]
    assert _rungs(job) <= {"low", "medium", "high"} and _rungs(job)


def test_hlsjs_switches_from_opus_to_aac_on_request(runs: dict[str, Any]) -> None:
    job = runs["hls-switch-to-aac"]
    _played_cleanly(job)
    to = job["switch"]["to"]
    assert job["switch"]["reached"] and _level(job, to)["audioCodec"] == "mp4a.40.2"
    assert job["switched"][0] != to and job["switched"][-1] == to, job["switched"]
    assert job["codecs"] == ["opus", "mp4a.40.2"]  # one SourceBuffer, changeType to AAC
    assert job["now"]["t"] >= job["switch"]["at"] + 2.0
    assert {"saver", "high"} <= _rungs(job)


def test_dashjs_starts_on_the_aac_adaptation_set(runs: dict[str, Any]) -> None:
    job = runs["dash-default"]
    _played_cleanly(job)
    tracks = {t["codec"]: t for t in job["tracks"]}
    assert set(tracks) == {'audio/mp4;codecs="mp4a.40.2"', 'audio/mp4;codecs="opus"'}
    assert tracks['audio/mp4;codecs="opus"']["roles"] == ["alternate"]
    assert job["now"]["track"]["codec"] == 'audio/mp4;codecs="mp4a.40.2"'
    assert job["now"]["representation"]["codecs"] == "mp4a.40.2"
    assert "saver" not in _rungs(job)


def test_dashjs_plays_the_opus_adaptation_set_when_asked(runs: dict[str, Any]) -> None:
    job = runs["dash-forced-saver"]
    _played_cleanly(job)
    assert job["now"]["track"]["codec"] == 'audio/mp4;codecs="opus"'
    assert job["now"]["representation"] == {"id": "saver", "bandwidth":
                                            job["now"]["representation"]["bandwidth"],
                                            "codecs": "opus"}
    assert _rungs(job) == {"saver"}
