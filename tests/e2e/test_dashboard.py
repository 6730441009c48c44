"""End to end: the analytics dashboard (/analytics) draws what the origin counted (issue 13).

`sori serve` runs with a write key, its analytics in a fresh SQLite file, and 127.0.0.1 as a
trusted proxy (so that the seeding requests can say which address they come from, as an
edge would). Two espeak-ng recordings are packaged by `sori package`. Real requests seed
the analytics:

- six whole downloads by podcast apps (Spotify, Apple Podcasts, Spreaker) from addresses in
  four countries, one listener fetching both episodes; a bot's download and a two-byte
  probe, which must not count;
- two player sessions of the first episode: its segments fetched with CMCD v1, and CMCD v2
  play-state reports POSTed to /v1/cmcd (startups of 800 and 1,200 ms, one rebuffer).

Then Debian's Chromium (analytics_drive.mjs) opens /analytics at a 375x812 phone viewport and
at a desktop one: without a key the origin answers 401 and the page asks for the key; with
it, every chart is read back from its SVG (bars, labels, values) and compared with the
origin's JSON and with the counts the seeding must give. The phone view must not scroll
sideways. Screenshots: test-artifacts/dashboard-*.png.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from real_clients import HttpClient, Origin, local_env, make_speech, package, serve  # noqa: E402

pytestmark = pytest.mark.e2e

DRIVER = E2E_DIR / "analytics_drive.mjs"
API_KEY = "e2e-dashboard-key-0123456789"
TALK, SECOND = "tour", "listeners"
TITLES = {TALK: "A short tour of sori", SECOND: "Counting listeners"}
SPOTIFY = "Spotify/8.7.10 iOS/15.3.1 (iPhone13,2)"
APPLE = "Podcasts/1410.53 CFNetwork/1111 Darwin/19.0.0 (x86_64)"
SPREAKER = "Spreaker 7.17.0 rv:1300 (iPhone8,4; iOS 15.8.3; en_CA)"
OVERCAST = "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)"
GOOGLEBOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"
# (user agent, client address, asset): whole downloads that count
DOWNLOADS = [
    (SPOTIFY, "81.2.69.142", TALK),  # GB
    (APPLE, "8.8.8.8", TALK),  # US
    (APPLE, "193.0.6.139", TALK),  # NL
    (SPREAKER, "200.160.2.3", TALK),  # BR
    (SPOTIFY, "81.2.69.142", SECOND),  # the same listener, the other episode
    (APPLE, "9.9.9.9", SECOND),  # US
]
EXPECTED: dict[str, Any] = {
    "downloads": 6, "listeners": 5,
    "assets": {TALK: 4, SECOND: 2},
    "countries": {"GB": 2, "US": 2, "NL": 1, "BR": 1},
    "apps": {"Apple Podcasts": 3, "Spotify": 2, "Spreaker": 1},
}
COUNTRY_NAMES = {"GB": "United Kingdom", "US": "United States", "NL": "Netherlands", "BR": "Brazil"}
# CMCD v2 play states of two sessions of TALK: ms after the first report, state, extra keys
SESSIONS = {
    "qoe-session-a": [(0, "s", ""), (800, "p", ",msd=800"), (6000, "a", "")],
    "qoe-session-b": [(0, "s", ""), (1200, "p", ",msd=1200"), (4000, "r", ""),
                      (4600, "p", ""), (9000, "e", "")],
}


def _get(client: HttpClient, path: str, ua: str, ip: str,
         extra: dict[str, str] | None = None) -> Any:
    return client.get(path, {"User-Agent": ua, "X-Forwarded-For": ip, **(extra or {})})


def _seed(origin: Origin) -> None:
    client = HttpClient(origin.base)
    for ua, ip, asset in DOWNLOADS:
        res = _get(client, f"/v1/assets/{asset}/download", ua, ip)
        assert res.status == 200 and len(res.body) > 10_000, (asset, res.status)
    # not counted: a bot's whole download, and a player's two-byte probe
    assert _get(client, f"/v1/assets/{TALK}/download", GOOGLEBOT, "8.8.4.4").status == 200
    probe = _get(client, f"/v1/assets/{TALK}/download", OVERCAST, "1.1.1.1", {"Range": "bytes=0-1"})
    assert probe.status == 206 and len(probe.body) == 2
    # Two player sessions of TALK (by the listener in GB, who has downloaded it already):
    # the segments of one rendition with CMCD v1, and the play states as CMCD v2 reports.
    master = _get(client, f"/assets/{TALK}/master.m3u8", SPOTIFY, "81.2.69.142").body.decode()
    media = next(line for line in master.splitlines() if line and not line.startswith("#"))
    playlist = _get(client, f"/assets/{TALK}/{media}", SPOTIFY, "81.2.69.142").body.decode()
    folder = f"/assets/{TALK}/{media.rsplit('/', 1)[0]}"
    segments = [line for line in playlist.splitlines() if line.endswith(".m4s")]
    assert segments, playlist
    for i, seg in enumerate(segments):
        cmcd = f'br=96,cid="{TALK}",d=4000,ot=a,sf=h,sid="qoe-session-a",st=v' + (",su" if i == 0 else "")
        res = _get(client, f"{folder}/{seg}?CMCD={urllib.parse.quote(cmcd)}", SPOTIFY, "81.2.69.142")
        assert res.status == 200, (seg, res.status)
    t0 = int(time.time() * 1000) - 10_000
    lines = [f'cid="{TALK}",e=ps,sid="{sid}",sta={sta},ts={t0 + dt},v=2{extra}'
             for sid, states in SESSIONS.items() for dt, sta, extra in states]
    client.close()
    body = ("\n".join(lines) + "\n").encode()
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    try:
        conn.request("POST", "/v1/cmcd", body=body, headers={
            "Content-Type": "text/cmcd", "User-Agent": SPOTIFY, "X-Forwarded-For": "81.2.69.142"})
        answer = conn.getresponse()
        assert answer.status in (200, 202, 204), (answer.status, answer.read()[:300])
    finally:
        conn.close()


def _api(origin: Origin, path: str) -> Any:
    client = HttpClient(origin.base)
    try:
        res = client.get(path, {"Authorization": f"Bearer {API_KEY}"})
        assert res.status == 200, (path, res.status, res.body[:300])
        return json.loads(res.body)
    finally:
        client.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("e2e-dashboard")
    env = local_env(work / "store", SORI_ANALYTICS_DATABASE=str(work / "analytics.sqlite3"),
                    SORI_SECURITY_API_KEYS=json.dumps([API_KEY]),
                    SORI_ORIGIN_TRUSTED_PROXIES=json.dumps(["127.0.0.1"]))
    package(env, make_speech(work / "tour.wav", "Welcome to a short tour of sori. It packages "
                             "speech for the web, and it counts who listened.", minimum=4.0),
            TALK, TITLES[TALK])
    package(env, make_speech(work / "listeners.wav", "A listener is one address and one app on "
                             "one day.", voice="en-gb", minimum=2.5), SECOND, TITLES[SECOND])
    with serve(env, work / "serve.log") as origin:
        _seed(origin)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        month = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 29 * 86400))
        q = urllib.parse.urlencode({"from": month, "to": today})
        # the writer catches up within a second or so
        deadline = time.monotonic() + 30
        while True:
            summary = _api(origin, f"/v1/analytics/summary?{q}")
            report = _api(origin, f"/v1/analytics/assets/{TALK}?{q}")
            if (summary["downloads"] >= EXPECTED["downloads"] and report["sessions"] >= 2
                    and report["renditions"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        scenario = {"base": origin.base, "chromium": str(CHROMIUM), "artifacts": str(ARTIFACTS),
                    "mode": "dashboard", "key": API_KEY, "wrongKey": "not-the-key-0123456789",
                    "viewports": [
                        {"name": "phone", "width": 375, "height": 812, "mobile": True},
                        {"name": "desktop", "width": 1280, "height": 900, "csv": True,
                         "period": 7, "clickAsset": SECOND}]}
        proc = subprocess.run(["node", str(DRIVER), json.dumps(scenario)], capture_output=True,
                              text=True, timeout=180, cwd=E2E_DIR)
        lines = proc.stdout.strip().splitlines()
        assert proc.returncode == 0 and lines, (
            f"analytics_drive.mjs exited {proc.returncode}\n{proc.stderr[-3000:]}")
        result = json.loads(lines[-1])
        (ARTIFACTS / "dashboard.json").write_text(json.dumps(result, indent=2))
        record = _api(origin, f"/v1/assets/{TALK}")
        yield {"origin": origin, "views": result["views"], "summary": summary, "report": report,
               "record": record, "period": {"from": month, "to": today}}


def _bars(view: dict[str, Any], chart: str) -> dict[str, tuple[str, float]]:
    return {b["key"]: (b["label"], b["value"]) for b in view["view"]["charts"][chart]["bars"]}


def test_the_origin_counted_the_seeding(run: dict[str, Any]) -> None:
    """The figures the dashboard must show, as the origin's JSON gives them."""
    s = run["summary"]
    assert (s["downloads"], s["listeners"]) == (EXPECTED["downloads"], EXPECTED["listeners"]), s
    assert {a["id"]: a["downloads"] for a in s["assets"]} == EXPECTED["assets"], s["assets"]
    assert s["countries"] == EXPECTED["countries"] and s["apps"] == EXPECTED["apps"], s
    r = run["report"]
    assert r["sessions"] == 2 and r["rebuffers"] == 1 and r["startup_ms_p50"] == 1000, r


@pytest.mark.parametrize("name", ["phone", "desktop"])
def test_without_a_key_the_page_asks_for_one(run: dict[str, Any], name: str) -> None:
    v = run["views"][name]
    assert not v["errors"], v["errors"]
    first = v["first"]
    assert first["keyPrompt"] and first["status"] == "key", first
    assert any(r["status"] == 401 and "/v1/analytics/summary" in r["url"] for r in v["statuses"])
    # a wrong key: asked again, saying the origin refused it
    refused = v["refused"]
    assert refused["status"] == "key" and refused["keyPrompt"], refused
    assert refused["message"] and "did not accept" in refused["message"], refused
    assert (ARTIFACTS / f"dashboard-{name}-key.png").stat().st_size > 5000


@pytest.mark.parametrize("name", ["phone", "desktop"])
def test_the_charts_draw_the_counts(run: dict[str, Any], name: str) -> None:
    v = run["views"][name]
    view = v["view"]
    assert view["status"] == "ready" and not view["keyPrompt"] and not view["error"], view
    s = run["summary"]
    assert view["tiles"]["downloads"] == str(EXPECTED["downloads"])
    assert view["tiles"]["listeners"] == str(EXPECTED["listeners"])
    assert re.fullmatch(r"[\d.]+ (kB|MB)", view["tiles"]["bytes"]), view["tiles"]
    # Top episodes: a bar per episode, named by its title, as long as its downloads say.
    assets = _bars(v, "chart-assets")
    assert assets == {a: (TITLES[a], n) for a, n in EXPECTED["assets"].items()}, assets
    widths = {b["key"]: b["width"] for b in view["charts"]["chart-assets"]["bars"]}
    assert widths[TALK] == pytest.approx(2 * widths[SECOND], rel=0.02), widths
    countries = _bars(v, "chart-countries")
    assert countries == {cc: (COUNTRY_NAMES[cc], n) for cc, n in EXPECTED["countries"].items()}
    assert _bars(v, "chart-apps") == {app: (app, n) for app, n in EXPECTED["apps"].items()}
    # Downloads per day: a bar for each of the 30 days, today's holding all of them.
    days = view["charts"]["chart-days"]["bars"]
    assert len(days) == 30, len(days)
    assert days[-1]["key"] == run["period"]["to"] and days[0]["key"] == run["period"]["from"]
    assert days[-1]["value"] == EXPECTED["downloads"] and days[-1]["height"] > 50, days[-1]
    assert all(d["value"] == 0 and d["height"] == 0 for d in days[:-1])
    assert s["days"][-1]["downloads"] == EXPECTED["downloads"]


@pytest.mark.parametrize("name", ["phone", "desktop"])
def test_playback_quality_of_the_top_episode(run: dict[str, Any], name: str) -> None:
    view = run["views"][name]["view"]
    r = run["report"]
    assert view["asset"] == TALK
    assert view["tiles"]["startup"] == "1.00 s" and view["tiles"]["sessions"] == "2", view["tiles"]
    assert view["charts"]["m-startup"]["verdict"] == "good"  # 1 s: at the edge of good
    ratio = r["rebuffer_ratio"]
    assert ratio is not None and 0 < ratio < 1
    assert view["tiles"]["rebuffer"].endswith("%")
    # Rendition mix: a share per rendition played, labelled with its bitrate.
    mix = {b["key"]: (b["label"], b["value"]) for b in view["charts"]["chart-renditions"]["bars"]}
    assert set(mix) == set(r["renditions"]) and mix, (mix, r["renditions"])
    bandwidth = {x["id"]: x["bandwidth"] for x in run["record"]["renditions"]}
    for rid, (label, seconds) in mix.items():
        assert seconds == pytest.approx(r["renditions"][rid])
        assert label == f"{rid} · {round(bandwidth[rid] / 1000)} kb/s", label


def test_an_episodes_row_opens_its_playback_quality(run: dict[str, Any]) -> None:
    clicked = run["views"]["desktop"]["clicked"]
    assert clicked["asset"] == SECOND and clicked["picker"] == SECOND, clicked
    assert clicked["report"]["id"] == SECOND and clicked["report"]["downloads"] == 2, clicked
    assert clicked["sessions"] == "0", clicked  # nobody played it in a player


def test_the_phone_view_never_scrolls_sideways(run: dict[str, Any]) -> None:
    for shown in (run["views"]["phone"]["first"], run["views"]["phone"]["view"]):
        o = shown["overflow"]
        assert o["scrollWidth"] <= 375 and o["clientWidth"] == 375, o
        assert not o["overflowing"], o
    # every chart fits the phone's column
    for chart, c in run["views"]["phone"]["view"]["charts"].items():
        for b in c["bars"]:
            assert b["width"] <= 375, (chart, b)


def test_csv_export_and_another_period(run: dict[str, Any]) -> None:
    v = run["views"]["desktop"]
    assert v["csvName"] == f"sori-analytics-{run['period']['from']}-{run['period']['to']}.csv"
    rows = v["csv"].strip().splitlines()
    assert rows[0].split(",")[:3] == ["day", "asset", "downloads"], rows[:2]
    assert {tuple(row.split(",")[1:3]) for row in rows[1:]} == {
        (a, str(n)) for a, n in EXPECTED["assets"].items()}, rows
    period = v["period"]
    assert period["days"] == 7 and len(period["bars"]) == 7
    assert period["bars"][-1]["value"] == EXPECTED["downloads"]


def test_analytics_is_served_like_the_player_page(run: dict[str, Any]) -> None:
    """GET /analytics and its modules: from the fast lane (a plain GET) and from aiohttp (a
    conditional one, a HEAD), with the page's headers; the player page links to it."""
    client = HttpClient(run["origin"].base)
    try:
        plain = client.get("/analytics")
        assert plain.status == 200 and b'src="/player/dashboard.js"' in plain.body
        for res in (plain, client.get("/analytics", {"If-None-Match": '"other"'}),
                    client.request("HEAD", "/analytics")):
            assert res.status == 200
            assert res.header("Content-Type") == "text/html; charset=utf-8"
            assert res.header("Cache-Control") == "no-cache"
            assert res.header("Referrer-Policy") == "no-referrer"
            assert res.header("ETag") == plain.header("ETag")
        assert client.get("/analytics", {"If-None-Match": plain.header("ETag") or ""}).status == 304
        for name in ("dashboard.js", "charts.js", "cmcd.js"):
            res = client.get(f"/player/{name}")
            assert res.status == 200 and res.header("Content-Type") == "text/javascript; charset=utf-8"
        assert b'href="/analytics"' in client.get("/").body
    finally:
        client.close()


def test_an_origin_without_analytics_says_so(tmp_path: Path) -> None:
    """[analytics] enabled = false: the endpoints answer 404, and the page says why rather
    than drawing empty charts."""
    _check_tools()
    (tmp_path / "store").mkdir()
    env = local_env(tmp_path / "store", SORI_ANALYTICS_ENABLED="false")
    with serve(env, tmp_path / "serve.log") as origin:
        scenario = {"base": origin.base, "chromium": str(CHROMIUM), "artifacts": str(ARTIFACTS),
                    "mode": "dashboard", "viewports": [
                        {"name": "disabled", "width": 375, "height": 812, "mobile": True}]}
        proc = subprocess.run(["node", str(DRIVER), json.dumps(scenario)], capture_output=True,
                              text=True, timeout=120, cwd=E2E_DIR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    v = json.loads(proc.stdout.strip().splitlines()[-1])["views"]["disabled"]
    assert any(r["status"] == 404 for r in v["statuses"]), v["statuses"]
    first = v["first"]
    assert first["status"] == "error" and not first["keyPrompt"], first
    assert "serves no analytics" in (first["error"] or ""), first
    assert first["overflow"]["scrollWidth"] <= 375 and not v["errors"], v


def test_screenshots_were_taken() -> None:
    for name in ("dashboard-phone", "dashboard-desktop"):
        path: Path = ARTIFACTS / f"{name}.png"
        assert path.stat().st_size > 20_000, path
