// Drive Debian's Chromium through sori's player page and print what happened as JSON.
//
//   node drive.mjs '<scenario JSON>'     (or the scenario on stdin)
//
// Scenario: {
//   "base": "http://127.0.0.1:PORT",        the origin
//   "artifacts": "/abs/dir",                 where screenshots go
//   "chromium": "/usr/bin/chromium",
//   "mode": "play" | "empty" | "video" | "upload",  "upload": "file" through the page's button                "empty": only the empty library
//   "hls": ["id", ...],                      assets to play through hls.js (first: the audio one)
//   "quality": "id",                         asset whose rendition is switched through the menu
//   "dash": ["id", ...],                     assets to play through dash.js
//   "videos": ["id", ...],                   mode "video": video assets, each played through
//   "steady": 3,                             hls.js for `steady` seconds of measured playback
//   "attempts": 3,                           mode "video": steady runs at most per asset
//   "thumbs": ["id", ...],                   mode "video": assets whose seek bar is hovered
// }
// Output: {"checks": [{"name", "ok", "detail"}], "screenshots": [...], "pageErrors": [...],
//          "consoleErrors": [...], "fatalErrors": [...], "videos": {id: measurements} (mode
//          "video"), "gallery": [{id, src, loaded, ...}] (mode "video")}. The caller asserts; this script only
// exits non-zero when it could not run at all.

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 };

const scenario = JSON.parse(process.argv[2] || fs.readFileSync(0, 'utf8'));
const out = { checks: [], screenshots: [], pageErrors: [], consoleErrors: [], fatalErrors: [] };
fs.mkdirSync(scenario.artifacts, { recursive: true });

function check(name, ok, detail = {}) {
  out.checks.push({ name, ok: Boolean(ok), detail });
  return ok;
}

async function shot(page, name) {
  const file = path.join(scenario.artifacts, `${name}.png`);
  await page.screenshot({ path: file });
  out.screenshots.push(file);
}

async function newPage(browser, device, label) {
  const context = await browser.newContext({ ...device, serviceWorkers: 'block' });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (err) => out.pageErrors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') out.consoleErrors.push(`${label}: ${msg.text()} (${msg.location()?.url ?? ''})`);
  });
  return page;
}

/** Open the page on `query`, wait for the library. */
async function open(page, query = '') {
  await page.goto(`${scenario.base}/${query}`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.soriPlayer && window.soriPlayer.ready);
  await page.evaluate(() => window.soriPlayer.ready);
}

/** Count media events from now on, so later steps can ask whether e.g. `playing` fired again. */
async function watchEvents(page) {
  await page.evaluate(() => {
    const v = window.soriPlayer.video;
    window.__events = [];
    if (!window.__watching) {
      window.__watching = true;
      for (const name of ['playing', 'waiting', 'seeking', 'seeked', 'pause', 'error']) {
        v.addEventListener(name, () => window.__events.push({ name, t: v.currentTime }));
      }
    }
  });
}

const state = (page) => page.evaluate(() => {
  const p = window.soriPlayer;
  return {
    t: p.video.currentTime, paused: p.video.paused, duration: p.video.duration,
    engine: p.engine, level: p.currentLevel(), levels: p.levels(), switches: [...p.levelSwitches],
    fatal: [...p.fatalErrors], events: [...(window.__events || [])], readyState: p.video.readyState,
  };
});

/** Wait until currentTime has gone `by` seconds past `from` while playing. */
async function advancesPast(page, from, by = 1, timeout = 15000) {
  try {
    await page.waitForFunction(([f, b]) => {
      const v = window.soriPlayer.video;
      return !v.paused && v.currentTime > f + b;
    }, [from, by], { timeout, polling: 100 });
    return true;
  } catch {
    return false;
  }
}

/** Press play through the UI (the big button) and wait for the first frame. */
async function startByUi(page, name) {
  await watchEvents(page);
  const started = Date.now();
  await page.click('.big-play');
  let playing = true;
  try {
    await page.waitForFunction(() => window.__events.some((e) => e.name === 'playing'), null, { timeout: 15000 });
  } catch {
    playing = false;
  }
  const s = await state(page);
  check(`${name}: playing fires after pressing play`, playing, { ms: Date.now() - started, engine: s.engine });
  const t0 = s.t;
  check(`${name}: time advances`, await advancesPast(page, t0, 1.0), { from: t0, to: (await state(page)).t });
  return s;
}

/** Click the seek bar at `fraction` of its width; playback must carry on from there. */
async function seekByUi(page, name, fraction = 0.7) {
  await watchEvents(page);
  const box = await page.locator('.seek-input').boundingBox();
  const thumb = 7; // half the thumb: a range input maps [thumb, width - thumb] to [min, max]
  const x = box.x + thumb + fraction * (box.width - 2 * thumb);
  await page.mouse.move(x, box.y + box.height / 2);
  await page.mouse.click(x, box.y + box.height / 2);
  const { duration } = await state(page);
  const target = fraction * duration;
  let seeked = true;
  try {
    await page.waitForFunction(() => window.__events.some((e) => e.name === 'seeked'), null, { timeout: 10000 });
  } catch {
    seeked = false;
  }
  const after = await state(page);
  check(`${name}: seek lands near ${Math.round(fraction * 100)}%`, seeked && Math.abs(after.t - target) < Math.max(2, 0.04 * duration),
    { target, t: after.t, duration });
  const resumed = await advancesPast(page, target, 1.0);
  const s = await state(page);
  const playingAgain = s.events.some((e) => e.name === 'playing') || (!s.paused && !s.events.some((e) => e.name === 'waiting'));
  check(`${name}: playback resumes after the seek`, resumed && playingAgain,
    { target, t: s.t, events: s.events.map((e) => e.name) });
}

async function switchQualityByUi(page, name) {
  const before = await state(page);
  if (!check(`${name}: has at least two renditions`, before.levels.length >= 2, { levels: before.levels })) return;
  // The data-saver rung (Opus) is offered in the menu, but playback starts on AAC-LC.
  const started = await page.evaluate(() => {
    const h = window.soriPlayer.controller.hls;
    return h ? { codec: h.levels[h.loadLevel]?.audioCodec || '', first: window.soriPlayer.levelSwitches[0] ?? null } : null;
  });
  check(`${name}: starts on AAC-LC, not on the data-saver rung`, started && started.codec.startsWith('mp4a'), { started });
  check(`${name}: the data-saver rung is in the quality menu`,
    before.levels.some((l) => l.label.startsWith('Data saver')), { levels: before.levels.map((l) => l.label) });
  const current = before.level >= 0 ? before.level : 0;
  // Pick the rendition furthest from the current one.
  const wanted = before.levels.map((l) => l.index).sort((a, b) => Math.abs(b - current) - Math.abs(a - current))[0];
  await page.mouse.move(640, 300);
  await page.click('[data-action=quality]');
  await page.waitForSelector('.menu:not([hidden]) [data-level]');
  await shot(page, `desktop-quality-menu-${name.replace(/\W+/g, '-')}`);
  await page.click(`.menu [data-level="${wanted}"]`);
  let switched = true;
  try {
    await page.waitForFunction((w) => window.soriPlayer.levelSwitches.includes(w) && window.soriPlayer.currentLevel() === w,
      wanted, { timeout: 15000 });
  } catch {
    switched = false;
  }
  const after = await state(page);
  const label = await page.textContent('[data-action=quality] .label');
  check(`${name}: LEVEL_SWITCHED to the rendition chosen in the menu`, switched,
    { from: current, wanted, level: after.level, switches: after.switches, label });
  check(`${name}: the menu button shows the chosen rendition`, label.trim() === before.levels[wanted].label,
    { label, expected: before.levels[wanted].label });
  check(`${name}: still playing after the switch`, await advancesPast(page, after.t, 0.5), {});
}

/** Video assets with a thumbnail track show a preview image over the seek bar on hover. */
async function thumbnailsOnHover(page, name) {
  const hasThumbs = await page.evaluate(() => Boolean(window.soriPlayer.asset.thumbnails));
  if (!hasThumbs) return;
  const box = await page.locator('.seek-input').boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  let shown = true;
  try {
    await page.waitForSelector('.seek-preview.has-image:not([hidden])', { timeout: 5000 });
  } catch {
    shown = false;
  }
  await shot(page, `desktop-thumbnail-${name.replace(/\W+/g, '-')}`);
  check(`${name}: seek-bar thumbnail on hover`, shown, {});
  await page.mouse.move(640, 200);
}

async function keyboardShortcuts(page, name) {
  await page.locator('body').focus();
  const rate = () => page.evaluate(() => window.soriPlayer.video.playbackRate);
  const paused = () => page.evaluate(() => window.soriPlayer.video.paused);
  await page.keyboard.press('k');
  const pausedByK = await paused();
  await page.keyboard.press('k');
  await page.waitForTimeout(200);
  const resumedByK = !(await paused());
  await page.keyboard.press('>');
  const faster = await rate();
  await page.keyboard.press('<');
  const normal = await rate();
  const t0 = await page.evaluate(() => window.soriPlayer.video.currentTime);
  await page.keyboard.press('j');
  const t1 = await page.evaluate(() => window.soriPlayer.video.currentTime);
  check(`${name}: keyboard shortcuts (k, >, <, j)`, pausedByK && resumedByK && faster === 1.25 && normal === 1 && t1 < t0 - 8,
    { pausedByK, resumedByK, faster, normal, t0, t1 });
  await advancesPast(page, t1, 0.5);
}

async function noFatal(page, name) {
  const s = await state(page);
  out.fatalErrors.push(...s.fatal.map((f) => `${name}: ${JSON.stringify(f)}`));
  check(`${name}: no fatal error`, s.fatal.length === 0, { fatal: s.fatal });
}

async function runPlay(browser) {
  // Phone: the library and an audio asset playing.
  const phone = await newPage(browser, PHONE, 'phone');
  await open(phone);
  const cards = await phone.locator('.card').count();
  check('phone: the library lists every asset', cards === scenario.expectAssets, { cards });
  await shot(phone, 'phone-home');
  await phone.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await shot(phone, 'phone-library');
  await phone.evaluate(() => window.scrollTo(0, 0));
  await phone.click(`.card[data-asset-id="${scenario.hls[0]}"]`);
  await watchEvents(phone);
  await phone.waitForFunction(() => window.soriPlayer.engine && !window.soriPlayer.video.paused
    && window.soriPlayer.video.currentTime > 0.5, null, { timeout: 15000 }).catch(() => {});
  const ps = await state(phone);
  check('phone: tapping a card plays it', ps.t > 0.5 && !ps.paused, { t: ps.t, engine: ps.engine });
  await shot(phone, 'phone-playing');
  await noFatal(phone, 'phone');
  await phone.context().close();

  // Desktop: every HLS asset, then DASH.
  const page = await newPage(browser, DESKTOP, 'desktop');
  await open(page);
  await shot(page, 'desktop-home');
  const leftAt = {};
  for (const id of scenario.hls) {
    const name = `hls ${id}`;
    await open(page, `?asset=${encodeURIComponent(id)}`);
    const s = await startByUi(page, name);
    check(`${name}: played by hls.js`, s.engine === 'hls.js', { engine: s.engine });
    // Opened by a link to it, so the page's boot script had started the stream before the
    // click, and the player took that hls.js instance over (player/index.html).
    check(`${name}: the stream started early by the page was adopted`,
      await page.evaluate(() => window.soriBoot?.adopted === true));
    // With a link to one asset, the library and the tab's icon come once its stream has
    // started (player/app.js), and then they do come.
    await page.waitForFunction((n) => document.querySelectorAll('.card').length === n
      && document.querySelector('link[rel="icon"][href="/player/favicon.svg"]'),
    scenario.expectAssets, { timeout: 5000 }).catch(() => {});
    check(`${name}: the library and the tab icon are drawn after the stream started`,
      await page.evaluate((n) => document.querySelectorAll('.card').length === n
        && document.querySelectorAll('link[rel="icon"]').length === 1, scenario.expectAssets));
    await shot(page, `desktop-playing-${id}`);
    await seekByUi(page, name, 0.7);
    await thumbnailsOnHover(page, name);
    if (id === scenario.quality) {
      await switchQualityByUi(page, name);
      await keyboardShortcuts(page, name);
      await page.keyboard.press('i');
      await page.waitForTimeout(600);
      await shot(page, `desktop-stats-${id}`);
      await page.keyboard.press('i');
    }
    await noFatal(page, name);
    leftAt[id] = (await state(page)).t;
  }

  // Resume: the first asset was left past 70%; opening it again starts from there.
  const first = scenario.hls[0];
  await open(page, `?asset=${encodeURIComponent(first)}`);
  // With a position to resume from, the page starts no stream early (index.html), so the
  // library has nothing to wait for: it is drawn at once, not after app.js's 3 s fallback.
  const drawnIn = await page.evaluate(async (n) => {
    // ms from DOMContentLoaded (app.js has run by then) until the cards are there
    const ready = performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;
    while (document.querySelectorAll('.card').length !== n && performance.now() - ready < 5000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return document.querySelectorAll('.card').length === n ? performance.now() - ready : null;
  }, scenario.expectAssets);
  check(`resume ${first}: the library is drawn without waiting for a stream`,
    drawnIn !== null && drawnIn < 2000, { drawnMsAfterDOMContentLoaded: drawnIn });
  await watchEvents(page);
  await page.click('.big-play');
  await page.waitForFunction(() => window.__events.some((e) => e.name === 'playing'), null, { timeout: 15000 }).catch(() => {});
  const rs = await state(page);
  // The page saves the position every 2 s of playback, so it may lag the last one seen.
  check(`resume ${first}: starts where it was left`, rs.t > 5 && rs.t > leftAt[first] - 3 && rs.t < leftAt[first] + 1,
    { t: rs.t, leftAt: leftAt[first], duration: rs.duration });
  await page.keyboard.press('?');
  await page.waitForSelector('#help[open]');
  await shot(page, 'desktop-help');
  await page.keyboard.press('Escape');

  for (const id of scenario.dash) {
    const name = `dash ${id}`;
    await open(page, `?asset=${encodeURIComponent(id)}&dash=1`);
    const s = await startByUi(page, name);
    check(`${name}: played by dash.js`, s.engine === 'dash.js', { engine: s.engine });
    await seekByUi(page, name, 0.7);
    await shot(page, `desktop-dash-${id}`);
    await noFatal(page, name);
  }
  await page.context().close();
}

/** Decoder counters and what the element shows, in one evaluate. */
const quality = (page) => page.evaluate(() => {
  const p = window.soriPlayer;
  const v = p.video;
  const q = v.getVideoPlaybackQuality();
  return {
    wall: performance.now(), t: v.currentTime, paused: v.paused, readyState: v.readyState,
    total: q.totalVideoFrames, dropped: q.droppedVideoFrames, corrupted: q.corruptedVideoFrames,
    width: v.videoWidth, height: v.videoHeight, level: p.currentLevel(),
    audioBytes: v.webkitAudioDecodedByteCount ?? null, videoBytes: v.webkitVideoDecodedByteCount ?? null,
    audioTracks: p.hls ? p.hls.audioTracks.length : null,
  };
});

/** The gallery: every video card shows its asset's poster, and the image really loaded. */
async function galleryPosters(page) {
  const cards = await page.evaluate(async () => {
    const out = [];
    const { assets } = await (await fetch('/v1/assets')).json();
    for (const asset of assets) {
      const img = document.querySelector(`.card[data-asset-id="${CSS.escape(asset.id)}"] img.card-poster`);
      if (img) {
        img.scrollIntoView({ block: 'center' }); // the posters load lazily
        if (!img.complete) await new Promise((r) => { img.onload = r; img.onerror = r; setTimeout(r, 5000); });
        if (img.decode) await img.decode().catch(() => {});
      }
      out.push({
        id: asset.id, kind: asset.kind, poster: asset.poster || null,
        src: img ? img.getAttribute('src') : null, loaded: Boolean(img && img.complete && img.naturalWidth > 0),
        naturalWidth: img ? img.naturalWidth : 0, naturalHeight: img ? img.naturalHeight : 0,
      });
    }
    window.scrollTo(0, 0);
    return out;
  });
  out.gallery = cards;
  for (const c of cards.filter((x) => x.kind === 'video')) {
    check(`gallery ${c.id}: the card shows the loaded poster`, c.poster && c.src === c.poster && c.loaded, c);
  }
}

/** Log every presented frame (requestVideoFrameCallback) so a drop can be told apart: a gap
 *  in the media timeline (the stream skips a frame) or in presentation (the machine was late). */
async function watchFrames(page) {
  await page.evaluate(() => {
    const v = window.soriPlayer.video;
    const log = [];
    const frames = { stop: false, log };
    frames.summary = () => {
      let maxMediaGap = 0, maxWallGap = 0, skipped = 0;
      const dropsAt = []; // media time of the frame shown when the drop counter went up
      for (let i = 1; i < log.length; i++) {
        if (log[i].dropped > log[i - 1].dropped) dropsAt.push(log[i].media);
        maxMediaGap = Math.max(maxMediaGap, log[i].media - log[i - 1].media);
        maxWallGap = Math.max(maxWallGap, log[i].now - log[i - 1].now);
        skipped += Math.max(0, log[i].presented - log[i - 1].presented - 1);
      }
      return { count: log.length, maxMediaGap, maxWallGap, skipped, dropsAt,
        first: log[0]?.media ?? null, last: log[log.length - 1]?.media ?? null };
    };
    window.__frames = frames;
    if (!v.requestVideoFrameCallback) return;
    const onFrame = (now, meta) => {
      log.push({ now, media: meta.mediaTime, presented: meta.presentedFrames,
        dropped: v.getVideoPlaybackQuality().droppedVideoFrames });
      if (!frames.stop) v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  });
}

/** Play one video asset through the page and measure the decoder over a steady stretch.
 *
 *  The steady part starts after the first second: start-up (and hls.js's first level switch)
 *  may hiccup, the run after that may not. A dropped frame is the renderer being late, which a
 *  stream defect causes every time and a loaded machine now and then; so a run with drops is
 *  measured again from the start (all buffered by then, `attempts` runs at most) and every
 *  run is reported. */
async function measureVideo(page, id, steady, attempts) {
  const name = `video ${id}`;
  await open(page, `?asset=${encodeURIComponent(id)}`);
  const s = await startByUi(page, name);
  check(`${name}: played by hls.js`, s.engine === 'hls.js', { engine: s.engine });
  const start = await quality(page);
  const runs = [];
  for (let n = 0; n < attempts; n++) {
    if (n > 0) {
      await watchEvents(page);
      await page.evaluate(() => { window.soriPlayer.video.currentTime = 0; });
      await page.waitForFunction(() => window.__events.some((e) => e.name === 'seeked'), null, { timeout: 10000 }).catch(() => {});
    }
    await page.waitForFunction(() => window.soriPlayer.video.currentTime >= 1.0 && !window.soriPlayer.video.seeking,
      null, { timeout: 10000 }).catch(() => {});
    await watchEvents(page);
    await watchFrames(page);
    const from = await quality(page);
    await page.waitForTimeout(steady * 1000);
    const to = await quality(page);
    const frames = await page.evaluate(() => { window.__frames.stop = true; return window.__frames.summary(); });
    const events = (await state(page)).events.map((e) => e.name);
    if (n === 0) await shot(page, `video-playing-${id}`);
    runs.push({ from, to, events, frames, dropped: to.dropped - from.dropped });
    if (to.dropped === from.dropped) break;
  }
  const judged = runs[runs.length - 1];
  const { from, to, events } = judged;
  const levels = await page.evaluate(() => window.soriPlayer.levels());
  out.videos[id] = { start, from, to, events, frames: judged.frames, levels, runs };
  check(`${name}: frames decoded during the steady run`, to.total > from.total && from.total >= start.total,
    { start: start.total, from: from.total, to: to.total });
  check(`${name}: no frame dropped during a steady run`, judged.dropped === 0,
    { runs: runs.map((r) => ({ dropped: r.dropped, frames: r.frames })) });
  check(`${name}: time advances steadily`, to.t - from.t > 0.8 * steady && !to.paused, { from: from.t, to: to.t });
  check(`${name}: no stall during the steady run`, !events.includes('waiting'), { events });
  await noFatal(page, name);
  return to;
}

/** The seek bar's preview shows a tile of the sprite sheet, and the sheet loaded. */
async function spritePreview(page, id) {
  await thumbnailsOnHover(page, `video ${id}`);
  const box = await page.locator('.seek-input').boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.waitForSelector('.seek-preview.has-image:not([hidden])', { timeout: 5000 }).catch(() => {});
  const info = await page.evaluate(async () => {
    const img = document.querySelector('.seek-preview-img');
    const style = getComputedStyle(img);
    const m = /url\("?([^")]+)"?\)/.exec(style.backgroundImage || '');
    const sheet = { url: m ? m[1] : null, width: 0, height: 0 };
    if (sheet.url) {
      const probe = new Image();
      probe.src = sheet.url;
      await probe.decode().catch(() => {});
      sheet.width = probe.naturalWidth;
      sheet.height = probe.naturalHeight;
    }
    return {
      sheet, position: style.backgroundPosition, boxWidth: img.offsetWidth, boxHeight: img.offsetHeight,
      visible: !document.querySelector('.seek-preview').hidden,
      thumbnails: window.soriPlayer.asset.thumbnails,
    };
  });
  await shot(page, `video-thumbnail-${id}`);
  out.previews[id] = info;
  check(`video ${id}: the preview is a tile of a loaded sprite sheet`,
    info.visible && info.sheet.width > 0 && info.sheet.width >= info.boxWidth && info.sheet.height >= info.boxHeight
    && info.boxWidth > 0, info);
  await page.mouse.move(640, 200);
}

async function runVideo(browser) {
  out.videos = {};
  out.previews = {};
  const thumbs = [].concat(scenario.thumbs || []);
  const page = await newPage(browser, DESKTOP, 'desktop');
  await open(page);
  const cards = await page.locator('.card').count();
  check('desktop: the library lists every asset', cards === scenario.videos.length, { cards });
  await galleryPosters(page);
  await page.evaluate(() => document.querySelector('#gallery').scrollIntoView({ block: 'start' }));
  await shot(page, 'video-gallery');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.setViewportSize({ width: 1280, height: 1400 });
  await shot(page, 'video-gallery-tall');
  await page.setViewportSize(DESKTOP.viewport);
  for (const id of scenario.videos) {
    await measureVideo(page, id, scenario.steady ?? 3, scenario.attempts ?? 3);
    if (thumbs.includes(id)) await spritePreview(page, id);
  }
  await page.context().close();
}

async function runEmpty(browser) {
  for (const [label, device] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const page = await newPage(browser, device, label);
    await open(page);
    const text = await page.textContent('#gallery');
    check(`${label}: empty library explains what to do`, /No assets yet/.test(text) && /sori package/.test(text), { text });
    check(`${label}: no player without assets`, await page.locator('#player-panel').isHidden(), {});
    await shot(page, `${label}-empty`);
    await page.context().close();
  }
}

async function runUpload(browser) {
  // Upload a file through the page's button, follow the job to "ready", and play the result.
  const page = await newPage(browser, DESKTOP, 'desktop');
  await open(page);
  const before = await page.locator('.card').count();
  await page.setInputFiles('#upload-input', scenario.file);
  const status = page.locator('#upload-status');
  await page.waitForFunction(() => {
    const s = document.querySelector('#upload-status');
    return s && (s.dataset.kind === 'ok' || s.dataset.kind === 'error');
  }, null, { timeout: 90000 });
  const kind = await status.getAttribute('data-kind');
  const text = await status.textContent();
  await shot(page, `desktop-upload-${kind}`);
  if (scenario.expectError) {
    check('upload: a bad file ends with the job\'s error on the page',
      kind === 'error' && text.includes(scenario.expectError), { kind, text });
    check('upload: a failed upload adds no asset', await page.locator('.card').count() === before, {});
  } else {
    check('upload: the page reports the new asset ready', kind === 'ok', { kind, text });
    await page.waitForFunction((n) => document.querySelectorAll('.card').length === n, before + 1);
    const current = await page.evaluate(() => window.soriPlayer.asset && window.soriPlayer.asset.id);
    check('upload: the new asset is selected', current === scenario.expectId, { current });
    await startByUi(page, `upload ${current}`);
  }
  await page.context().close();
}

const browser = await launch(scenario.chromium);
try {
  if (scenario.mode === 'empty') await runEmpty(browser);
  else if (scenario.mode === 'video') await runVideo(browser);
  else if (scenario.mode === 'upload') await runUpload(browser);
  else await runPlay(browser);
} catch (err) {
  check('driver ran to the end', false, { error: String(err.stack || err) });
} finally {
  await browser.close();
}
// (An upload refused on purpose is a failed request, which Chromium logs as an error.)
if (scenario.mode !== 'upload') {
  check('the pages logged no console error (a missing resource would be one)',
    out.consoleErrors.length === 0, { consoleErrors: out.consoleErrors });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
