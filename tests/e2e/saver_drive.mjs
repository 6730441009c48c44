// Drive Chromium for test_data_saver_playback.py: hls.js and dash.js, each with its default
// configuration, on a bare page (no sori player code) over one packaged audio asset whose
// master playlist and MPD carry the Opus data-saver rung; print what happened as JSON.
//
//   node saver_drive.mjs '<scenario JSON>'
//
// Scenario: {"base": origin URL, "id": asset id, "chromium", "artifacts", "seconds": media
//            seconds each job must play, "jobs": [{"name", "player": "hlsjs"|"dashjs",
//            "force": "saver"|null}]}
//   hlsjs + force "saver": hls.currentLevel is set to the level whose audio codec is Opus as
//                          soon as the manifest is parsed (a listener choosing it).
//   dashjs + force "saver": setInitialMediaSettingsFor('audio', {role: alternate}) before
//                          the stream starts, the Role the MPD gives the Opus AdaptationSet.
//   hlsjs "config": an hls.js configuration instead of the default one.
//   hlsjs "switchTo": {"codec": "mp4a"|"opus", "after": s}: after `after` seconds of playback
//                     hls.currentLevel is set to the highest level of that codec.
// Output: {"jobs": {name: {played, first, levels, tracks, segments, decodedBytes, errors,
//          fatal, pageErrors, codecs, ...}}}; the caller asserts.

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const scenario = JSON.parse(process.argv[2]);
fs.mkdirSync(scenario.artifacts, { recursive: true });

// The bare page, answered by the driver at an address of the origin (same origin: no CORS
// in the way), loads the players the origin serves under /vendor/.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>saver</title></head>
<body><video id="v" muted playsinline></video>
<script src="/vendor/hls.min.js"></script><script src="/vendor/dash.all.min.js"></script>
<script>
'use strict';
const video = document.getElementById('v');
const state = { errors: [], fatal: [], frags: [], switched: [], codecs: [], levels: [], tracks: [], notes: [] };
window.state = state;
video.addEventListener('error', () => state.fatal.push({ source: 'video', detail: video.error && video.error.message }));

window.startHls = (url, force, config) => {
  const hls = new Hls(config || {});  // the default configuration unless the job gives one
  window.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
    state.levels = hls.levels.map((l, i) => ({ index: i, bitrate: l.bitrate, averageBitrate: l.averageBitrate,
      audioCodec: l.audioCodec, codecSet: l.codecSet, uri: l.uri }));
    state.firstLevel = data.firstLevel;
    if (force === 'saver') {
      const i = hls.levels.findIndex((l) => /opus/i.test(l.audioCodec || ''));
      state.forced = i;
      if (i >= 0) hls.currentLevel = i;
    }
  });
  hls.on(Hls.Events.BUFFER_CODECS, (_e, data) => state.codecs.push(data.audio ? data.audio.codec : null));
  hls.on(Hls.Events.FRAG_LOADED, (_e, data) => state.frags.push({ level: data.frag.level, sn: data.frag.sn, url: data.frag.url }));
  hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => state.switched.push(data.level));
  hls.on(Hls.Events.ERROR, (_e, data) => {
    const item = { type: data.type, details: data.details, fatal: data.fatal };
    (data.fatal ? state.fatal : state.errors).push(item);
  });
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => state.notes.push(String(e)));
};

window.startDash = (url, force) => {
  const player = dashjs.MediaPlayer().create();  // default settings
  window.player = player;
  player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
  player.initialize(video, null, true);  // the source comes after the initial track settings
  if (force === 'saver') {
    player.setInitialMediaSettingsFor('audio', { role: { schemeIdUri: 'urn:mpeg:dash:role:2011', value: 'alternate' } });
  }
  const E = dashjs.MediaPlayer.events;
  player.on(E.STREAM_INITIALIZED, () => {
    state.tracks = player.getTracksFor('audio').map((t) => ({ id: t.id, index: t.index, codec: t.codec,
      roles: (t.roles || []).map((r) => r.value || r), selectionPriority: t.selectionPriority,
      bitrates: (t.bitrateList || []).map((b) => b.bandwidth) }));
  });
  player.on(E.ERROR, (e) => state.fatal.push({ source: 'dash.js', detail: JSON.stringify(e.error || e).slice(0, 300) }));
  player.attachSource(url);
};

window.current = () => {
  const out = { t: video.currentTime, paused: video.paused, readyState: video.readyState,
    decodedBytes: video.webkitAudioDecodedByteCount ?? null };
  if (window.hls) {
    out.level = window.hls.currentLevel;
    out.loadLevel = window.hls.loadLevel;
  }
  if (window.player) {
    const t = window.player.getCurrentTrackFor('audio');
    out.track = t ? { id: t.id, index: t.index, codec: t.codec, roles: (t.roles || []).map((r) => r.value || r) } : null;
    const rep = window.player.getCurrentRepresentationForType ? window.player.getCurrentRepresentationForType('audio') : null;
    out.representation = rep ? { id: rep.id, bandwidth: rep.bandwidth, codecs: rep.codecs } : null;
  }
  out.segments = performance.getEntriesByType('resource').map((e) => e.name)
    .filter((n) => /\\/v\\/[^/]+\\/[^/]+\\/(init\\.mp4|seg_\\d+\\.m4s)$/.test(n))
    .map((n) => n.replace(/^.*\\/v\\/[^/]+\\//, ''));
  return out;
};
</script></body></html>`;

async function runJob(browser, job) {
  const out = { pageErrors: [], console: [] };
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.console.push(m.text()); });
  const pageUrl = `${scenario.base}/__saver_page_${job.name}`;
  await page.route(pageUrl, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: PAGE }));
  await page.goto(pageUrl, { waitUntil: 'load' });
  const manifest = job.player === 'hlsjs'
    ? `${scenario.base}/assets/${scenario.id}/master.m3u8`
    : `${scenario.base}/assets/${scenario.id}/manifest.mpd`;
  const started = Date.now();
  await page.evaluate(([p, url, force, config]) => (p === 'hlsjs' ? window.startHls(url, force, config)
    : window.startDash(url, force)), [job.player, manifest, job.force || null, job.config || null]);
  if (job.switchTo) {
    // A listener changing rendition mid-play (hls.js: across codec families, which hls.js
    // never does on its own): wait for `after` seconds of playback, then set currentLevel.
    const ok = await page.waitForFunction((a) => document.getElementById('v').currentTime >= a,
      job.switchTo.after, { timeout: 20000, polling: 100 }).then(() => true, () => false);
    out.switch = await page.evaluate(([codec, ok]) => {
      const i = window.hls.levels.findIndex((l) => (l.audioCodec || '').startsWith(codec)
        && l.bitrate === Math.max(...window.hls.levels.filter((m) => (m.audioCodec || '').startsWith(codec)).map((m) => m.bitrate)));
      const at = document.getElementById('v').currentTime;
      if (ok && i >= 0) window.hls.currentLevel = i;
      return { to: i, at, reached: ok };
    }, [job.switchTo.codec, ok]);
  }
  let played = true;
  try {
    await page.waitForFunction((s) => document.getElementById('v').currentTime >= s
      || window.state.fatal.length > 0, scenario.seconds, { timeout: 30000, polling: 100 });
  } catch {
    played = false;
  }
  const now = await page.evaluate(() => window.current());
  const state = await page.evaluate(() => window.state);
  Object.assign(out, state, { now, played: played && now.t >= scenario.seconds, ms: Date.now() - started });
  await page.screenshot({ path: path.join(scenario.artifacts, `saver-${job.name}.png`) }).catch(() => {});
  await context.close();
  return out;
}

const browser = await launch(scenario.chromium);
const result = { jobs: {} };
try {
  // The jobs at once, each in its own context: one after another they were 40 s of the
  // suite, most of it waiting for playback.
  await Promise.all(scenario.jobs.map(async (job) => {
    try {
      result.jobs[job.name] = await runJob(browser, job);
    } catch (err) {
      result.jobs[job.name] = { driverError: String(err.stack || err) };
    }
  }));
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
