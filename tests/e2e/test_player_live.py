"""End to end: the player page on a live TTS stream, from its first word to the VOD it becomes.

`sori serve` runs over a fresh local store. A live stream is created (`POST /v1/live`,
raw PCM s16le 22.05 kHz mono) and espeak-ng speech is pushed into it in real time from a
thread (200 ms chunks, `POST /v1/live/{id}/chunks?seq=N`): SPEAK_FIRST seconds, then
nothing for PAUSE seconds (the origin fills in silence, its events say "paused"), then
SPEAK_AGAIN seconds, then `POST /v1/live/{id}/end`. Debian's Chromium, driven by the
playwright-core script in DRIVER_JS (written out per run), opens the player page on that
asset OPEN_AFTER seconds into the stream and checks, on the page as a listener sees it:

- the LIVE badge on the stage and on the library's card; hls.js in low-latency mode;
- playback starts at ~0 s (the stream's first word), not at the live edge, and advances;
- the "jump to live" button shows while the playhead is more than ~3 s behind, and takes it
  to hls.liveSyncPosition (then it goes away);
- the producer's state from the stream's events: "Speaking… N s" with N growing, "Paused
  (waiting for the voice)" during the pause, speaking again after it;
- after the end: the badge goes away, the status says it ended, the record is "ready",
  hls.js sees EXT-X-ENDLIST (a finite duration, the sealed one) and plays to the end; the
  card shows a duration; opened again, the asset plays as an ordinary VOD asset (no badge,
  from 0, a seek through the seek bar lands and plays on).

The driver reports every check as JSON (last line of its output); the assertions are here.
Screenshots go to `test-artifacts/` (live-player-*.png), the report to
test-artifacts/live-player.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import IO, Any

import pytest
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from live_producer import LiveProducer  # noqa: E402 - the real-time producer
from real_clients import local_env, serve  # noqa: E402 - shared helpers

pytestmark = pytest.mark.e2e

ASSET_ID = "live-talk"
CHUNK_SECONDS = 0.2
SPEAK_FIRST = 10.0  # seconds of speech pushed before the pause
PAUSE = 4.0  # seconds the producer sends nothing
SPEAK_AGAIN = 5.0  # seconds of speech after it
OPEN_AFTER = 5.0  # seconds into the stream when the page is opened (so it starts ~5 s behind)
STREAM_SECONDS = SPEAK_FIRST + PAUSE + SPEAK_AGAIN
READY_TIMEOUT = 60  # seconds for Chromium to start
DRIVER_TIMEOUT = STREAM_SECONDS + 90

SPEECH = (
    "Good evening, and welcome to this live stream. Every word you hear was spoken by a "
    "small speech synthesiser while the stream was being made, and pushed to the origin a "
    "fifth of a second at a time. A listener who opens the page late still hears the very "
    "first word, and can jump to the live edge whenever they like. After a short pause the "
    "voice comes back for a few more words, and when it stops, the stream becomes an "
    "ordinary recording at the same address."
)


def _pcm(path: Path) -> tuple[bytes, int]:
    """espeak-ng speech as raw s16le mono (espeak-ng writes 22.05 kHz mono WAV)."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), SPEECH],
                   check=True, capture_output=True, timeout=60)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2), "espeak-ng wrote no s16 mono"
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    assert len(data) >= (SPEAK_FIRST + SPEAK_AGAIN + 0.5) * rate * 2, "too little speech"
    return data, rate


def _read_line(stream: IO[str], timeout: float) -> str | None:
    """One line from `stream`, or None after `timeout` seconds."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0].strip() if got else None


# ---- the browser ----------------------------------------------------------------------------

# Run as `node --input-type=module -e DRIVER_JS SCENARIO` in tests/e2e (playwright-core
# resolves from there). It prints "ready" once Chromium is up, reads the stream's start time
# (ms since the epoch) from stdin, and prints {"checks", "screenshots", "statuses", "events",
# "pageErrors", "consoleErrors", "fatalErrors", "marks"} last.
DRIVER_JS = r"""
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const sc = JSON.parse(process.argv[1]);
const out = { checks: [], screenshots: [], statuses: [], events: [], pageErrors: [],
              consoleErrors: [], fatalErrors: [], marks: {} };
const check = (name, ok, detail = {}) => { out.checks.push({ name, ok: Boolean(ok), detail }); return ok; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
fs.mkdirSync(sc.artifacts, { recursive: true });

async function shot(page, name) {
  const file = path.join(sc.artifacts, `${name}.png`);
  await page.screenshot({ path: file });
  out.screenshots.push(file);
}

const view = (page) => page.evaluate(() => {
  const p = window.soriPlayer;
  const v = p.video;
  const visible = (sel) => { const n = document.querySelector(sel); return Boolean(n && n.offsetParent !== null && !n.closest('[hidden]')); };
  const details = p.hls?.latestLevelDetails;
  return {
    t: v.currentTime, paused: v.paused, ended: v.ended, duration: v.duration, engine: p.engine,
    badge: visible('.live-badge'), info: visible('.live-info'), jump: visible('[data-action=live]'),
    status: document.querySelector('.live-status').textContent, isLive: p.live.live,
    state: p.asset && p.asset.state, recordDuration: p.asset && p.asset.duration,
    sync: p.hls ? p.hls.liveSyncPosition : null, behind: p.controller.liveBehind(),
    playlistLive: details ? details.live : null, fatal: [...p.fatalErrors],
    lowLatency: p.hls ? p.hls.config.lowLatencyMode : null,
    startPosition: p.hls ? p.hls.config.startPosition : null,
    card: document.querySelector(`.card[data-asset-id="${p.asset && p.asset.id}"] .badge`)?.className ?? null,
    cardText: document.querySelector(`.card[data-asset-id="${p.asset && p.asset.id}"] .badge`)?.textContent ?? null,
  };
});

async function waitFor(page, fn, arg, timeout) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    return true;
  } catch {
    return false;
  }
}

const advances = (page, from, by, timeout = 10000) => waitFor(page, ([f, b]) => {
  const v = window.soriPlayer.video;
  return !v.paused && v.currentTime > f + b;
}, [from, by], timeout);

async function open(page) {
  await page.goto(`${sc.base}/?asset=${encodeURIComponent(sc.id)}`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.soriPlayer && window.soriPlayer.ready);
  await page.evaluate(() => window.soriPlayer.ready);
  await page.evaluate(() => {
    const v = window.soriPlayer.video;
    window.__events = [];
    for (const name of ['playing', 'seeked', 'ended', 'error']) {
      v.addEventListener(name, () => window.__events.push({ name, t: v.currentTime }));
    }
    // every text the producer's status shows, as it changes
    window.__statuses = [];
    const status = document.querySelector('.live-status');
    const note = () => {
      const last = window.__statuses[window.__statuses.length - 1];
      if (!last || last.status !== status.textContent) {
        window.__statuses.push({ at: Date.now(), status: status.textContent, t: v.currentTime });
      }
    };
    note();
    new MutationObserver(note).observe(status, { childList: true, characterData: true, subtree: true });
  });
}

/** Wait until `until(view)` or `ms` pass; a screenshot while the producer is paused. */
async function watch(page, until, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = await view(page);
    if (s.status.startsWith('Paused') && !out.marks.pausedShot) {
      out.marks.pausedShot = true;
      await shot(page, 'live-player-paused');
    }
    if (until(s)) return s;
    await sleep(150);
  }
  return view(page);
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, serviceWorkers: 'block' });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (err) => out.pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') out.consoleErrors.push(`${msg.text()} (${msg.location()?.url ?? ''})`);
  });

  // ---- the live stream, opened OPEN_AFTER seconds in ----
  await sleep(Math.max(0, sc.t0 + sc.openAfter * 1000 - Date.now()));
  await open(page);
  let s = await view(page);
  check('live: the stage shows the LIVE badge', s.badge && s.state === 'live', s);
  await page.click('.big-play');
  const playing = await waitFor(page, () => window.__events.some((e) => e.name === 'playing'), null, 15000);
  const first = await page.evaluate(() => window.__events.find((e) => e.name === 'playing'));
  s = await view(page);
  out.marks.firstPlaying = first;
  out.marks.openedAt = Date.now() - sc.t0;
  check('live: playback starts', playing, s);
  check('live: played by hls.js in low-latency mode, from position 0',
    s.engine === 'hls.js' && s.lowLatency === true && s.startPosition === 0, s);
  check('live: starts from the first word (position ~0), not at the live edge',
    first && first.t < 1.0, { first, sync: s.sync });
  check('live: time advances', await advances(page, s.t, 1.5), await view(page));
  const behind = await waitFor(page, () => !document.querySelector('[data-action=live]').hidden, null, 5000);
  s = await view(page);
  out.marks.behind = s.behind;
  check('live: "jump to live" shows while more than 3 s behind', behind && s.behind > 3, s);
  const card = await waitFor(page, (id) => document.querySelector(`.card[data-asset-id="${id}"] .badge-live`), sc.id, 8000);
  check('live: the library\'s card has a LIVE badge', card, await view(page));
  await shot(page, 'live-player-behind');

  // ---- jump to live ----
  const before = await view(page);
  await page.click('[data-action=live]');
  const atEdge = await waitFor(page, () => {
    const p = window.soriPlayer;
    return document.querySelector('[data-action=live]').hidden && p.controller.liveBehind() < 2
      && !p.video.paused;
  }, null, 8000);
  s = await view(page);
  out.marks.afterJump = { t: s.t, sync: s.sync, behind: s.behind };
  check('live: "jump to live" goes to hls.liveSyncPosition and then hides',
    atEdge && s.t > before.t + 2 && s.sync !== null && Math.abs(s.sync - s.t) < 2, { before, after: s });
  check('live: time advances at the live edge', await advances(page, s.t, 1.0), await view(page));
  await shot(page, 'live-player-at-edge');

  // ---- the producer's state, until the stream ends ----
  s = await watch(page, (v) => !v.badge && v.state === 'ready',
    Math.max(5000, sc.t0 + (sc.streamSeconds + 15) * 1000 - Date.now()));
  out.statuses = (await page.evaluate(() => window.__statuses))
    .map((x) => ({ ...x, at: x.at - sc.t0 }));
  const texts = out.statuses.map((x) => x.status).filter(Boolean);
  const speaking = texts.map((x) => /^Speaking… (\d+\.\d) s$/.exec(x)).filter(Boolean).map((m) => Number(m[1]));
  const pausedAt = texts.findIndex((x) => x === 'Paused (waiting for the voice)');
  check('live: the producer\'s state shows "Speaking… N s", N growing',
    speaking.length >= 3 && speaking.every((n, i) => i === 0 || n >= speaking[i - 1])
      && speaking[speaking.length - 1] > speaking[0] + 3, { texts });
  check('live: "Paused (waiting for the voice)" while the producer sends nothing',
    pausedAt >= 0, { texts });
  check('live: speaking again after the pause',
    pausedAt >= 0 && texts.slice(pausedAt + 1).some((x) => x.startsWith('Speaking')), { texts });

  // ---- the end ----
  check('ended: the LIVE badge goes away and the record is ready', !s.badge && s.state === 'ready', s);
  check('ended: the status says the stream ended', s.status.startsWith('Ended'), s);
  await shot(page, 'live-player-ended');
  const endlist = await waitFor(page, () => {
    const d = window.soriPlayer.hls?.latestLevelDetails;
    return d && d.live === false && Number.isFinite(window.soriPlayer.video.duration);
  }, null, 10000);
  s = await view(page);
  check('ended: hls.js sees EXT-X-ENDLIST, the seek bar spans the sealed duration',
    endlist && Math.abs(s.duration - s.recordDuration) < 0.5
      && Number(await page.$eval('.seek-input', (n) => n.max)) === s.duration, s);
  const reached = await waitFor(page, () => window.__events.some((e) => e.name === 'ended'), null, 20000);
  s = await view(page);
  check('ended: playback goes on to the end', reached && s.t > s.duration - 0.5, s);
  const cardDone = await waitFor(page, (id) => {
    const b = document.querySelector(`.card[data-asset-id="${id}"] .badge`);
    return b && !b.classList.contains('badge-live') && /^\d+:\d\d$/.test(b.textContent);
  }, sc.id, 10000);
  check('ended: the library\'s card shows a duration instead of LIVE', cardDone, await view(page));
  out.events = await page.evaluate(() => window.soriPlayer.live.events.map((e) => e.type));
  out.fatalErrors.push(...s.fatal.map((f) => JSON.stringify(f)));

  // ---- the same asset, opened again: an ordinary VOD asset ----
  await open(page);
  s = await view(page);
  check('vod: opened again, no LIVE badge', !s.badge && !s.info && s.state === 'ready', s);
  await page.click('.big-play');
  const vodPlaying = await waitFor(page, () => window.__events.some((e) => e.name === 'playing'), null, 15000);
  const vodFirst = await page.evaluate(() => window.__events.find((e) => e.name === 'playing'));
  check('vod: plays from the start', vodPlaying && vodFirst && vodFirst.t < 1.0, { vodFirst });
  const vodDetails = await waitFor(page, () => window.soriPlayer.hls?.latestLevelDetails?.live === false, null, 5000);
  check('vod: hls.js loads a VOD playlist', vodDetails, await view(page));
  s = await view(page);
  check('vod: time advances', await advances(page, s.t, 1.0), await view(page));
  const box = await page.locator('.seek-input').boundingBox();
  const fraction = 0.6;
  const x = box.x + 7 + fraction * (box.width - 14);
  await page.mouse.move(x, box.y + box.height / 2);
  await page.mouse.click(x, box.y + box.height / 2);
  const seeked = await waitFor(page, () => window.__events.some((e) => e.name === 'seeked'), null, 10000);
  s = await view(page);
  const target = fraction * s.duration;
  check('vod: a seek through the seek bar lands', seeked && Math.abs(s.t - target) < 2, { target, s });
  check('vod: playback goes on after the seek', await advances(page, target, 1.0), await view(page));
  await shot(page, 'live-player-as-vod');
  s = await view(page);
  out.fatalErrors.push(...s.fatal.map((f) => JSON.stringify(f)));
  await context.close();
}

const browser = await chromium.launch({
  executablePath: sc.chromium, headless: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--autoplay-policy=no-user-gesture-required'],
});
process.stdout.write('ready\n');
const line = await new Promise((resolve) => readline.createInterface({ input: process.stdin }).once('line', resolve));
sc.t0 = JSON.parse(line).t0;
try {
  await run(browser);
} catch (err) {
  check('driver ran to the end', false, { error: String(err.stack || err) });
} finally {
  await browser.close();
}
check('the page logged no console error', out.consoleErrors.length === 0, { consoleErrors: out.consoleErrors });
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
"""


# ---- the run -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stream pushed in real time while Chromium listens; the driver's report."""
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("e2e-player-live")
    pcm, rate = _pcm(work / "speech.wav")
    with serve(local_env(work / "store"), work / "serve.log") as origin:
        producer = LiveProducer(origin.base, ASSET_ID, pcm, rate, SPEAK_FIRST + SPEAK_AGAIN,
                                title="A live talk", pause_at=SPEAK_FIRST, pause=PAUSE,
                                chunk_seconds=CHUNK_SECONDS)
        producer.create()
        scenario = {"base": origin.base, "id": ASSET_ID, "artifacts": str(ARTIFACTS),
                    "chromium": str(CHROMIUM), "openAfter": OPEN_AFTER,
                    "streamSeconds": STREAM_SECONDS}
        driver_log = work / "driver.log"
        with driver_log.open("w") as err:
            node = subprocess.Popen(["node", "--input-type=module", "-e", DRIVER_JS,
                                     json.dumps(scenario)], cwd=E2E_DIR, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
        assert node.stdin is not None and node.stdout is not None
        try:
            ready = _read_line(node.stdout, READY_TIMEOUT)
            assert ready == "ready", (f"the driver did not get ready ({ready!r}):\n"
                                      f"{driver_log.read_text()[-3000:]}")
            t0 = time.time() + 0.2
            producer.start(t0)
            out, _ = node.communicate(json.dumps({"t0": int(t0 * 1000)}) + "\n",
                                      timeout=DRIVER_TIMEOUT)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
        producer.join()
        log = (work / "serve.log").read_text(errors="replace")
    stderr = driver_log.read_text(errors="replace")
    lines = out.strip().splitlines()
    assert node.returncode == 0 and lines, (
        f"the driver exited {node.returncode}\nstdout:\n{out[-3000:]}\nstderr:\n{stderr[-3000:]}")
    report: dict[str, Any] = json.loads(lines[-1])
    report["producer"] = {"errors": producer.errors, "sealed": producer.sealed.get("state"),
                          "duration": producer.sealed.get("duration")}
    (ARTIFACTS / "live-player.json").write_text(json.dumps(report, indent=1))
    origin_errors = [line for line in log.splitlines() if "Traceback" in line or '"status":500' in line]
    return {"report": report, "producer": producer, "origin_errors": origin_errors}


def _assert_checks(report: dict[str, Any], prefix: str) -> None:
    checks = [c for c in report["checks"] if c["name"].startswith(prefix)]
    assert checks, f"the driver ran no {prefix!r} check: {report['checks']}"
    failed = [c for c in checks if not c["ok"]]
    detail = "\n".join(f"  FAIL {c['name']}: {json.dumps(c['detail'])[:1200]}" for c in failed)
    statuses = json.dumps(report["statuses"])[:2000]
    assert not failed, (f"{len(failed)} of {len(checks)} {prefix!r} checks failed:\n{detail}\n"
                        f"  statuses seen: {statuses}")


def test_the_stream_was_pushed_and_sealed(run: dict[str, Any]) -> None:
    producer: LiveProducer = run["producer"]
    assert producer.created["state"] == "live", producer.created
    assert producer.created["live"]["events"] == f"/v1/live/{ASSET_ID}/events", producer.created
    assert not producer.errors, producer.errors
    assert producer.sealed.get("state") == "ready", producer.sealed
    assert not run["origin_errors"], "the origin logged errors:\n" + "\n".join(run["origin_errors"][:20])


def test_the_driver_ran_to_the_end(run: dict[str, Any]) -> None:
    report = run["report"]
    crashed = [c for c in report["checks"] if c["name"] == "driver ran to the end"]
    assert not crashed, crashed[0]["detail"]["error"] if crashed else ""
    assert not report["pageErrors"], f"uncaught errors in the page: {report['pageErrors']}"
    assert not report["fatalErrors"], f"fatal player errors: {report['fatalErrors']}"
    _assert_checks(report, "the page logged no console error")


def test_live_badge_start_from_zero_and_jump_to_live(run: dict[str, Any]) -> None:
    _assert_checks(run["report"], "live: ")
    # Opened OPEN_AFTER seconds in and played from 0, the page was that far behind live.
    assert run["report"]["marks"]["behind"] > 3, run["report"]["marks"]
    for name in ("live-player-behind", "live-player-at-edge", "live-player-ended"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000, name


def test_the_producer_state_comes_from_the_event_stream(run: dict[str, Any]) -> None:
    events = run["report"]["events"]
    assert "progress" in events and events[-1] == "ended", events


def test_after_the_end_the_badge_goes_and_it_plays_as_vod(run: dict[str, Any]) -> None:
    _assert_checks(run["report"], "ended: ")
    _assert_checks(run["report"], "vod: ")
