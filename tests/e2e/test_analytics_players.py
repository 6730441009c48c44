"""End to end: hls.js, dash.js and Shaka play with CMCD on, and the origin counts their
sessions (issue 13).

`sori serve` runs over a fresh local store holding three espeak-ng recordings packaged by
`sori package`, with its analytics in a fresh SQLite file. Debian's Chromium
(analytics_drive.mjs) plays one recording per player:

- hls.js and dash.js on sori's own page (`window.soriPlayer.load`), where player/controller.js
  turns CMCD v1 on in the engine and starts the page's CMCD v2 reporter (player/cmcd.js);
- Shaka on a bare page under the origin's address that takes its CMCD config and the same
  v2 reporter from player/cmcd.js (the page itself does not embed Shaka).

Each plays a few seconds, seeks, pauses, and its page is closed (pagehide: the last reports
leave by sendBeacon). hls.js plays once more on the page opened on a link to the asset
(`/?asset=ID`), where index.html starts an hls.js instance before the page's modules run and
the player adopts it, session id and all. One more hls.js playback is closed while its
segments are still held back by the network: a listener who left before the first word.

What is checked: every media request a player made carried a CMCD= query with the
playback's session id and the asset as content id, and the origin answered it; the v2
reports went to POST /v1/cmcd under the same session id, in play order (starting, playing
with its media start delay, seeking, playing, paused); and the origin's own report of each
asset (GET /v1/analytics/assets/{id}) counts the session, the seconds played per
rendition, the startup time the page measured, and the exit before start. The browser's
user agent is Chromium's without "Headless" (a headless browser is a bot to the OPAWG
list, and the origin leaves bots out, as it should).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from real_clients import Origin, local_env, make_speech, package, serve  # noqa: E402

pytestmark = pytest.mark.e2e

DRIVER = E2E_DIR / "analytics_drive.mjs"
DRIVER_TIMEOUT = 240
SECONDS = 3.0  # media seconds each player plays before it seeks
PLAYERS = {  # job name -> (player, asset id, streaming format in CMCD `sf`)
    "hlsjs": ("hlsjs", "cmcd-hls", "h"),
    "dashjs": ("dashjs", "cmcd-dash", "d"),
    "shaka": ("shaka", "cmcd-shaka", "d"),
}
QUIT_JOB = "hlsjs-quit"  # plays PLAYERS["hlsjs"]'s asset, and leaves before it starts
# sori's page opened on a link to the asset (/?asset=ID): index.html starts hls.js before the
# page's modules run, and the player adopts that instance (its own session id) when played
LINKED = {"hlsjs-linked": ("hlsjs", "cmcd-linked", "h")}
# Shaka with CMCD v1 alone (no v2 reporter): what the origin makes of the requests by
# themselves
V1_ONLY = {"shaka-v1": ("shaka", "cmcd-v1", "d")}
TEXTS = {
    "cmcd-hls": "Common media client data travels with every request the player makes. "
                "The session identifier ties the requests of one playback together, and the "
                "content identifier names the episode being heard.",
    "cmcd-dash": "The same recording could be heard through the dash manifest. Every segment "
                 "request says how much is buffered, which bitrate was asked for, and how fast "
                 "the network has been lately.",
    "cmcd-linked": "Someone shared a link to this episode. The page begins to load it at "
                   "once, before the rest of the page has arrived, and keeps that player.",
    "cmcd-v1": "This time nobody reports the play states. The origin has only the data that "
               "came with each request, and still knows it was one session of this episode.",
    "cmcd-shaka": "A third player reads the manifest too. The page reports when playback "
                  "starts, when it stalls and when the listener leaves, so that the origin "
                  "can tell how quickly the first word was heard.",
}


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as res:
        return json.load(res)


def _cmcd(value: str | None) -> dict[str, str]:
    """A CMCD= value as {key: raw value} (strings keep their quotes)."""
    out: dict[str, str] = {}
    for member in (value or "").split(","):
        key, _, raw = member.partition("=")
        if key:
            out[key] = raw
    return out


def _reports(lines: list[str]) -> list[dict[str, str]]:
    return [_cmcd(line) for line in lines]


def _asset_report(origin: Origin, asset_id: str) -> dict[str, Any]:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    q = urllib.parse.urlencode({"from": today, "to": today})
    report: dict[str, Any] = _get_json(f"{origin.base}/v1/analytics/assets/{asset_id}?{q}")
    return report


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("e2e-cmcd")
    env = local_env(work / "store", SORI_ANALYTICS_DATABASE=str(work / "analytics.sqlite3"))
    for asset_id, text in TEXTS.items():
        package(env, make_speech(work / f"{asset_id}.wav", text, minimum=9.0), asset_id)
    jobs = [{"name": name, "player": player, "id": asset_id, "seconds": SECONDS,
             "linked": name in LINKED, "v1Only": name in V1_ONLY}
            for name, (player, asset_id, _) in {**PLAYERS, **LINKED, **V1_ONLY}.items()]
    jobs.append({"name": QUIT_JOB, "player": "hlsjs", "id": PLAYERS["hlsjs"][1],
                 "seconds": 0, "quitBeforeStart": True})
    with serve(env, work / "serve.log") as origin:
        scenario = {"base": origin.base, "chromium": str(CHROMIUM), "artifacts": str(ARTIFACTS),
                    "mode": "players", "jobs": jobs}
        proc = subprocess.run(["node", str(DRIVER), json.dumps(scenario)], capture_output=True,
                              text=True, timeout=DRIVER_TIMEOUT, cwd=E2E_DIR)
        lines = proc.stdout.strip().splitlines()
        assert proc.returncode == 0 and lines, (
            f"analytics_drive.mjs exited {proc.returncode}\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        (ARTIFACTS / "analytics-players.json").write_text(json.dumps(result, indent=2))
        # The origin records through a queue and a writer thread: its reports catch up
        # within a second or so.
        reports: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while True:
            reports = {a: _asset_report(origin, a) for a in TEXTS}
            hls = reports[PLAYERS["hlsjs"][1]]
            reported = [reports[a] for _, a, _ in {**PLAYERS, **LINKED}.values()]
            if (all(r["sessions"] >= 1 and r["startup_ms_p50"] is not None for r in reported)
                    and hls["exits_before_start"] >= 1
                    and reports[V1_ONLY["shaka-v1"][1]]["sessions"] >= 1) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        yield {"origin": origin, "jobs": result["jobs"], "reports": reports, "ua": result["ua"],
               "records": {a: _get_json(f"{origin.base}/v1/assets/{a}") for a in TEXTS}}


def _job(run: dict[str, Any], name: str) -> dict[str, Any]:
    job: dict[str, Any] = run["jobs"][name]
    failed = [c for c in job["checks"] if not c["ok"]]
    assert not failed, f"{name}: browser checks failed: {json.dumps(failed)[:1500]}"
    assert not job["pageErrors"], f"{name}: errors in the page: {job['pageErrors']}"
    assert job["sid"], f"{name}: the page had no CMCD session"
    return job


@pytest.mark.parametrize("name", [*PLAYERS, *LINKED, *V1_ONLY])
def test_every_media_request_carries_cmcd_of_the_session(run: dict[str, Any], name: str) -> None:
    _, asset_id, sf = {**PLAYERS, **LINKED, **V1_ONLY}[name]
    job = _job(run, name)
    segments = [r for r in job["requests"] if r["url"].endswith(".m4s")]
    assert len(segments) >= 2, f"{name} fetched {len(segments)} segments: {job['requests'][:5]}"
    for r in segments:
        data = _cmcd(r["cmcd"])
        assert data.get("sid") == f'"{job["sid"]}"', (name, r)
        assert data.get("cid") == f'"{asset_id}"', (name, r)
        assert data.get("sf") == sf and data.get("ot") in ("a", "av"), (name, r)
        assert int(data["br"]) > 0 and int(data["d"]) > 0, (name, r)
        assert r["status"] == 200, f"the origin answered {r['status']} to {r['url']}"
    # init segments and playlists (besides the first manifest) are tagged too
    others = [r for r in job["requests"] if not r["url"].endswith(".m4s") and r["cmcd"]]
    assert any(_cmcd(r["cmcd"]).get("ot") == "i" for r in others), (name, job["requests"][:6])


@pytest.mark.parametrize("name", [*PLAYERS, *LINKED])
def test_play_states_reach_the_collector_as_cmcd_v2(run: dict[str, Any], name: str) -> None:
    _, asset_id, _ = {**PLAYERS, **LINKED}[name]
    job = _job(run, name)
    made = _reports(job["made"])
    assert made, f"{name}: the reporter made no report"
    for r in made:
        assert r["v"] == "2" and r["sid"] == f'"{job["sid"]}"' and r["cid"] == f'"{asset_id}"', r
        assert int(r["ts"]) > 1_700_000_000_000, r  # wall clock milliseconds
    states = [r["sta"] for r in made if r.get("e") == "ps"]
    # starting, playing, the seek and playing again, paused. (A loaded machine may stall
    # playback for real: a rebuffer, then playing again; a player may seek by itself, e.g.
    # Shaka onto the first buffered frame: a seek, then playing again.)
    flow = [st for i, st in enumerate(states) if st != "r" and not (st == "p" and states[i - 1] == "r")]
    assert flow[:2] == ["s", "p"] and flow[-3:] == ["k", "p", "a"], f"{name}: play states {states}"
    assert set(flow[2:-3]) <= {"k", "p"}, f"{name}: play states {states}"
    playing = next(r for r in made if r.get("sta") == "p")
    assert 0 < int(playing["msd"]) < 20_000, playing
    assert int(playing["br"].strip("()").split(";")[0]) > 0, playing
    # Sent: in POSTs to the collector while the page lived (text/cmcd, one report a line)
    posted = _reports(job["reports"])
    assert [r["sn"] for r in posted] == [r["sn"] for r in made][:len(posted)] and posted, (
        f"{name}: posted {len(posted)} of {len(made)} reports")


def test_the_origin_counts_each_session(run: dict[str, Any]) -> None:
    """What the origin made of it: GET /v1/analytics/assets/{id} per player's asset."""
    for name, (_, asset_id, _) in {**PLAYERS, **LINKED}.items():
        job = _job(run, name)
        report = run["reports"][asset_id]
        sessions = 2 if name == "hlsjs" else 1  # + the listener who left before the start
        assert report["sessions"] == sessions, (name, report)
        # the startup the page measured (from asking to play to the first frame)
        msd = int(next(r for r in _reports(job["made"]) if r.get("sta") == "p")["msd"])
        assert report["startup_ms_p50"] == pytest.approx(msd, abs=25), (name, msd, report)
        # seconds played per rendition, from the segments served (ids of the asset's own)
        renditions = report["renditions"]
        known = {r["id"] for r in run["records"][asset_id]["renditions"]}
        assert renditions and set(renditions) <= known, (name, renditions, known)
        assert sum(renditions.values()) >= SECONDS, (name, renditions)
        assert report["bytes"] > 0 and report["rebuffer_ratio"] is not None, (name, report)
        assert report["exits_before_start"] == (1 if name == "hlsjs" else 0), (name, report)


def test_the_origin_counts_a_session_from_cmcd_v1_alone(run: dict[str, Any]) -> None:
    """No v2 report at all: the session, the renditions and a startup bound come from the
    CMCD data the origin received with the requests themselves."""
    name = next(iter(V1_ONLY))
    job = _job(run, name)
    assert job["made"] == [] and job["reports"] == [], job["reports"]
    report = run["reports"][V1_ONLY[name][1]]
    assert report["sessions"] == 1 and report["exits_before_start"] == 0, report
    assert sum(report["renditions"].values()) >= SECONDS, report


def test_a_listener_who_leaves_before_the_start_is_an_exit(run: dict[str, Any]) -> None:
    job = _job(run, QUIT_JOB)
    made = _reports(job["made"])
    states = [r["sta"] for r in made if r.get("e") == "ps"]
    assert states == ["s"], f"play states before the page closed: {states}"
    assert not any(r["url"].endswith(".m4s") and r["status"] == 200 for r in job["requests"]), \
        "a segment arrived: the listener did not leave before the start"
    # The quit itself leaves by beacon as the page goes: the origin has it.
    assert run["reports"][PLAYERS["hlsjs"][1]]["exits_before_start"] == 1, run["reports"]
