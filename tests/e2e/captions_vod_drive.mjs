// Drive Chromium for test_captions_vod.py: hls.js, dash.js and Shaka, each on a bare page
// (no sori player code), over packaged VOD assets that carry a transcript; report the text
// tracks each player offers, the cues that reach the media element's TextTrack, and the
// active cue at given playback times (after a seek). Print what happened as JSON.
//
//   node captions_vod_drive.mjs '<scenario JSON>'
//
// Scenario: {"base": origin URL, "chromium", "artifacts", "shaka": path of Shaka's compiled
//            build, "jobs": [{"name", "player": "hlsjs"|"dashjs"|"shaka", "url": manifest URL,
//            "expect": number of distinct cues to wait for, "probes": [seconds, ...]}]}
// Output: {"jobs": {name: {tracks, cues: [{start, end, text}], active: [{t, texts}],
//          errors, fatal, pageErrors}}}; the caller asserts.

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const scenario = JSON.parse(process.argv[2]);
fs.mkdirSync(scenario.artifacts, { recursive: true });

// The page is answered by the driver at an address of the origin (same origin: no CORS in
// the way); hls.js and dash.js are the builds the origin serves under /vendor/, Shaka is
// answered from the e2e packages.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>captions</title></head>
<body><video id="v" muted playsinline></video>
<script src="/vendor/hls.min.js"></script><script src="/vendor/dash.all.min.js"></script>
<script src="/__captions_lib/shaka.js"></script>
<script>
'use strict';
const video = document.getElementById('v');
const state = { errors: [], fatal: [], tracks: [], notes: [] };
window.state = state;
video.addEventListener('error', () => state.fatal.push({ source: 'video', detail: video.error && video.error.message }));

window.start = async (kind, url) => {
  if (kind === 'hlsjs') {
    const hls = new Hls();  // default configuration
    window.hls = hls;
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_e, data) => {
      state.tracks = data.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang, default: t.default }));
      // a viewer turning captions on (DEFAULT=NO: off until asked); after the event, as
      // hls.js applies its own default choice (none) right after dispatching it
      setTimeout(() => { hls.subtitleDisplay = true; hls.subtitleTrack = 0; }, 0);
    });
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, (_e, d) => state.notes.push({ switch: d.id }));
    hls.on(Hls.Events.SUBTITLE_FRAG_PROCESSED, (_e, d) => state.notes.push({ vtt: d.frag.sn, ok: d.success }));
    hls.on(Hls.Events.ERROR, (_e, d) => {
      const item = { type: d.type, details: d.details, fatal: d.fatal };
      (d.fatal ? state.fatal : state.errors).push(item);
    });
    hls.attachMedia(video);
    hls.loadSource(url);
    video.play().catch((e) => state.notes.push(String(e)));
  } else if (kind === 'dashjs') {
    const player = dashjs.MediaPlayer().create();  // default settings
    window.player = player;
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    const E = dashjs.MediaPlayer.events;
    player.on(E.ERROR, (e) => state.fatal.push({ source: 'dash.js', detail: JSON.stringify(e.error || e).slice(0, 300) }));
    player.on(E.STREAM_INITIALIZED, () => {
      const tracks = player.getTracksFor('text');
      state.tracks = tracks.map((t) => ({ lang: t.lang, mimeType: t.mimeType, roles: (t.roles || []).map((r) => r.value || r) }));
      if (tracks.length) player.setCurrentTrack(tracks[0]);
      player.enableText(true);
    });
    player.initialize(video, url, true);
  } else {
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    window.shakaPlayer = player;
    await player.attach(video);
    player.addEventListener('error', (e) => {
      const d = e.detail;
      const item = { code: d.code, category: d.category, severity: d.severity };
      (d.severity === shaka.util.Error.Severity.CRITICAL ? state.fatal : state.errors).push(item);
    });
    await player.load(url);
    const tracks = player.getTextTracks();
    state.tracks = tracks.map((t) => ({ lang: t.language, label: t.label, kind: t.kind, mimeType: t.mimeType }));
    if (tracks.length) player.selectTextTrack(tracks[0]);  // Shaka 5: selecting shows it
    video.play().catch((e) => state.notes.push(String(e)));
  }
};

// Every cue the media element holds, over all its text tracks that are not disabled.
window.cues = () => {
  const out = [];
  for (const tt of Array.from(video.textTracks)) {
    if (tt.mode === 'disabled' || !tt.cues) continue;
    for (const c of Array.from(tt.cues)) out.push({ start: c.startTime, end: c.endTime, text: c.text, track: tt.label, kind: tt.kind });
  }
  return out;
};

window.activeAt = async (t) => {
  video.pause();
  await new Promise((resolve) => {
    video.addEventListener('seeked', resolve, { once: true });
    video.currentTime = t;
  });
  await new Promise((r) => setTimeout(r, 300));  // cuechange after the seek
  const texts = [];
  for (const tt of Array.from(video.textTracks)) {
    if (tt.mode === 'disabled' || !tt.activeCues) continue;
    for (const c of Array.from(tt.activeCues)) texts.push(c.text);
  }
  return { t, at: video.currentTime, texts };
};
</script></body></html>`;

async function runJob(browser, job) {
  const out = { pageErrors: [], console: [] };
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.console.push(m.text()); });
  const pageUrl = `${scenario.base}/__captions_page_${job.name}`;
  await page.route(pageUrl, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: PAGE }));
  await page.route(`${scenario.base}/__captions_lib/shaka.js`,
    (route) => route.fulfill({ status: 200, contentType: 'text/javascript', path: scenario.shaka }));
  await page.goto(pageUrl, { waitUntil: 'load' });
  await page.evaluate(([kind, url]) => window.start(kind, url), [job.player, job.url]);
  try {
    await page.waitForFunction((n) => {
      const seen = new Set(window.cues().map((c) => `${c.start}|${c.end}|${c.text}`));
      return seen.size >= n || window.state.fatal.length > 0;
    }, job.expect, { timeout: 30000, polling: 200 });
  } catch {
    out.timedOut = true;
  }
  out.cues = await page.evaluate(() => window.cues());
  out.active = [];
  for (const t of job.probes || []) out.active.push(await page.evaluate((x) => window.activeAt(x), t));
  Object.assign(out, await page.evaluate(() => window.state));
  out.textTracks = await page.evaluate(() => Array.from(document.getElementById('v').textTracks)
    .map((t) => ({ kind: t.kind, label: t.label, language: t.language, mode: t.mode, cues: t.cues ? t.cues.length : null })));
  await page.screenshot({ path: path.join(scenario.artifacts, `captions-vod-${job.name}.png`) }).catch(() => {});
  await context.close();
  return out;
}

const browser = await launch(scenario.chromium);
const result = { jobs: {} };
try {
  for (const job of scenario.jobs) {
    try {
      result.jobs[job.name] = await runJob(browser, job);
    } catch (err) {
      result.jobs[job.name] = { driverError: String(err.stack || err) };
    }
  }
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
