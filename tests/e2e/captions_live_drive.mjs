// Drive Chromium through the player page on a live stream with a transcript
// (test_captions_live.py) and print what it saw as JSON; the assertions are in Python.
//
//   node captions_live_drive.mjs '<scenario JSON>'
//
// Scenario: {"base", "id", "chromium", "artifacts", "seconds": how long to watch at most,
//            "dash": true to play it with dash.js (the page's DASH button),
//            "raw": "shaka" with "page" (live_page.html) and "url" (the MPD): Shaka on the bare
//            page instead of sori's, its text track selected (Shaka 5 then shows it)}
// The driver waits for the asset to be live, opens the page on it with captions turned on
// (as a listener who turned them on before), presses play, then samples every 200 ms what
// hls.js and the page show until the stream has been sealed and played to its end.
// Output: {"samples": [...], "sealedAt": ms, "pageErrors", "consoleErrors", "fatal", "error"?}

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const sc = JSON.parse(process.argv[2] || fs.readFileSync(0, 'utf8'));
const out = { samples: [], pageErrors: [], consoleErrors: [], fatal: [] };
fs.mkdirSync(sc.artifacts, { recursive: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const began = Date.now();
const progress = (msg) => process.stderr.write(`+${Date.now() - began}ms ${msg}\n`);

async function record() {
  try {
    const res = await fetch(`${sc.base}/v1/assets/${encodeURIComponent(sc.id)}`);
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

const browser = await launch(sc.chromium);
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: 'block' });
  await context.addInitScript(() => localStorage.setItem('sori:captions', 'true'));
  const page = await context.newPage();
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  // (a failed request is recorded with its URL by the response hook, not as its console line)
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) out.consoleErrors.push(m.text());
  });
  page.on('response', (res) => { if (res.status() >= 400) out.consoleErrors.push(`${res.status()} ${res.url()}`); });
  let rec = null;
  for (let i = 0; i < 300 && rec?.state !== 'live'; i += 1) {
    rec = await record();
    if (rec?.state !== 'live') await sleep(100);
  }
  if (rec?.state !== 'live') throw new Error(`the stream never went live: ${JSON.stringify(rec)}`);
  progress('live');
  if (sc.raw) {
    await raw(page);
  } else {
    await onSoriPage(page);
  }
  await context.close();
} catch (err) {
  out.error = String(err.stack || err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);

/** A raw player on the bare page: the text tracks it adds to the element, sampled. */
async function raw(page) {
  await page.goto(`${sc.page}?player=${sc.raw}`, { waitUntil: 'load' });
  await page.evaluate(() => window.live.prepare());
  await page.evaluate((url) => window.live.start(url), sc.url);
  await page.evaluate(() => {  // Shaka 5: selecting a text track shows it
    const p = window.live.player;
    const tracks = p.getTextTracks();
    if (tracks.length) p.selectTextTrack(tracks[0]);
  });
  const deadline = Date.now() + sc.seconds * 1000;
  while (Date.now() < deadline) {
    const s = await page.evaluate(() => {
      const v = window.live.video;
      const p = window.live.player;
      return {
        wall: Date.now(), t: v.currentTime, paused: v.paused, ended: v.ended, engine: 'shaka',
        live: p.isLive(),
        tracks: [...v.textTracks].map((t) => ({ kind: t.kind, mode: t.mode, label: t.label,
          cues: t.cues ? [...t.cues].map((c) => [c.startTime, c.endTime, c.text]) : null })),
        fatal: [...window.live.state.fatal],
      };
    });
    out.samples.push(s);
    if (s.ended || (!s.live && s.paused)) break;
    await sleep(200);
  }
  out.fatal = out.samples.length ? out.samples[out.samples.length - 1].fatal : [];
}

async function onSoriPage(page) {
  await page.goto(`${sc.base}/?asset=${encodeURIComponent(sc.id)}${sc.dash ? '&dash=1' : ''}`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.soriPlayer && window.soriPlayer.ready);
  await page.evaluate(() => window.soriPlayer.ready);
  await page.click('.big-play');
  const deadline = Date.now() + sc.seconds * 1000;
  let sealedSeen = null;
  while (Date.now() < deadline) {
    const s = await page.evaluate(() => {
      const p = window.soriPlayer;
      const v = p.video;
      const overlay = document.querySelector('.captions');
      const tracks = [...v.textTracks].map((t) => ({ kind: t.kind, mode: t.mode, label: t.label,
        cues: t.cues ? [...t.cues].map((c) => [c.startTime, c.endTime, c.text]) : null }));
      const current = document.querySelector('.transcript-line[aria-current=true]');
      return {
        wall: Date.now(), t: v.currentTime, paused: v.paused, ended: v.ended, engine: p.engine,
        live: p.controller.live,
        hls: p.hls ? { subtitleTracks: p.hls.subtitleTracks.length, subtitleTrack: p.hls.subtitleTrack,
          display: p.hls.subtitleDisplay } : null,
        tracks,
        captions: { on: p.captions.on, available: p.captions.available, source: p.captions.source,
          cues: p.captions.cues.map((c) => [c.start, c.end, c.text]) },
        overlay: overlay.hidden ? '' : overlay.textContent,
        button: !document.querySelector('[data-action=captions]').hidden,
        lines: document.querySelectorAll('.transcript-line').length,
        highlighted: current ? Number(current.dataset.index) : -1,
        fatal: [...p.fatalErrors],
      };
    });
    out.samples.push(s);
    if (sealedSeen === null && out.samples.length % 5 === 0) {
      const r = await record();
      if (r?.state === 'ready') { sealedSeen = Date.now(); out.sealedAt = sealedSeen; progress('sealed'); }
    }
    if (s.ended || (sealedSeen !== null && Date.now() - sealedSeen > 4000 && s.paused)) break;
    if (out.samples.length === 25) await page.screenshot({ path: path.join(sc.artifacts, `captions-live-${sc.dash ? 'dash' : 'hls'}.png`) });
    await sleep(200);
  }
  await page.screenshot({ path: path.join(sc.artifacts, `captions-live-${sc.dash ? 'dash' : 'hls'}-end.png`) });
  out.fatal = out.samples.length ? out.samples[out.samples.length - 1].fatal : [];
}
