// Drive Chromium through the player page's captions, transcript panel and chapter marks
// (test_captions_page.py) and print what it saw as JSON; the assertions are in Python.
//
//   node captions_drive.mjs '<scenario JSON>'   (or the scenario on stdin)
//
// Scenario: {"base", "id", "chromium", "artifacts", "samples": N (captions samples while
// playing), "line": index of the transcript line to click, "hoverAt": seconds (a point
// inside a chapter, hovered on the seek bar)}
// Output: {"steps": {name: facts}, "pageErrors", "consoleErrors", "fatal", "error"?}

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 };

const scenario = JSON.parse(process.argv[2] || fs.readFileSync(0, 'utf8'));
const out = { steps: {}, pageErrors: [], consoleErrors: [], fatal: [] };
fs.mkdirSync(scenario.artifacts, { recursive: true });
const began = Date.now();
const progress = (msg) => process.stderr.write(`+${Date.now() - began}ms ${msg}\n`);

async function shot(page, name) {
  await page.screenshot({ path: path.join(scenario.artifacts, `captions-${name}.png`) }).catch(() => {});
}

async function newPage(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (err) => out.pageErrors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') out.consoleErrors.push(`${label}: ${msg.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) out.consoleErrors.push(`${label}: ${res.status()} ${res.url()}`);
  });
  return page;
}

async function open(page, query) {
  await page.goto(`${scenario.base}/${query}`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.soriPlayer && window.soriPlayer.ready);
  await page.evaluate(() => window.soriPlayer.ready);
  // The transcript (and so the captions button) arrives with the playback URLs.
  await page.waitForFunction(() => window.soriPlayer.captions.cues.length > 0, null, { timeout: 10000 }).catch(() => {});
}

/** What the page shows of the timed text right now, read in one go. */
const view = (page) => page.evaluate(() => {
  const p = window.soriPlayer;
  const button = document.querySelector('[data-action=captions]');
  const overlay = document.querySelector('.captions');
  const current = document.querySelector('.transcript-line[aria-current=true]');
  return {
    t: p.video.currentTime, paused: p.video.paused, engine: p.engine,
    on: p.captions.on, source: p.captions.source,
    button: { hidden: button.hidden, pressed: button.getAttribute('aria-pressed') },
    overlay: { hidden: overlay.hidden, text: overlay.textContent, visible: overlay.getBoundingClientRect().height > 0 && !overlay.hidden },
    highlighted: current ? Number(current.dataset.index) : -1,
    stored: localStorage.getItem('sori:captions'),
    fatal: [...p.fatalErrors],
  };
});

/** Sample the overlay and the highlighted line every 150 ms while it plays. */
async function sample(page, n) {
  const samples = [];
  for (let i = 0; i < n; i += 1) {
    samples.push(await view(page));
    await page.waitForTimeout(150);
  }
  return samples;
}

async function play(page) {
  await page.click('.big-play');
  await page.waitForFunction(() => !window.soriPlayer.video.paused && window.soriPlayer.video.currentTime > 0.3,
    null, { timeout: 15000 }).catch(() => {});
}

async function desktop(browser) {
  const context = await browser.newContext({ ...DESKTOP, serviceWorkers: 'block' });
  const page = await newPage(context, 'desktop');
  await open(page, `?asset=${encodeURIComponent(scenario.id)}`);

  // Before anything: captions off (a fresh profile), the transcript listed, chapter marks drawn.
  const before = await view(page);
  const panel = await page.evaluate(() => ({
    hidden: document.querySelector('#transcript').hidden,
    lines: [...document.querySelectorAll('.transcript-line')].map((b) => ({
      start: Number(b.dataset.start), text: b.querySelector('.transcript-text').textContent,
      label: b.getAttribute('aria-label'),
    })),
    cues: window.soriPlayer.captions.cues,
  }));
  await page.waitForFunction(() => document.querySelectorAll('.chapter-mark').length > 0, null, { timeout: 10000 }).catch(() => {});
  const marks = await page.evaluate(() => {
    const layer = document.querySelector('.chapter-marks').getBoundingClientRect();
    const input = document.querySelector('.seek-input').getBoundingClientRect();
    return {
      duration: window.soriPlayer.video.duration || window.soriPlayer.asset.duration,
      chapters: window.soriPlayer.chapters,
      input: { left: input.left, width: input.width },
      marks: [...document.querySelectorAll('.chapter-mark')].map((m) => {
        const r = m.getBoundingClientRect();
        return { start: Number(m.dataset.start), title: m.getAttribute('title'), x: r.left + r.width / 2,
          fraction: (r.left + r.width / 2 - layer.left) / layer.width, visible: r.width > 0 && r.height > 0 };
      }),
    };
  });
  out.steps.initial = { view: before, panel, marks };
  await shot(page, 'desktop-initial');

  // The toggle turns captions on and remembers it.
  await page.click('[data-action=captions]');
  out.steps.toggled = await view(page);
  progress('captions on');

  await play(page);
  out.steps.playing = await sample(page, scenario.samples ?? 40);
  await shot(page, 'desktop-playing');
  progress('sampled');

  // The seek bar's preview names the chapter under the pointer.
  const seek = await page.locator('.seek-input').boundingBox();
  const d = await page.evaluate(() => window.soriPlayer.video.duration);
  const x = seek.x + 7 + (scenario.hoverAt / d) * (seek.width - 14);
  await page.mouse.move(x, seek.y + seek.height / 2);
  await page.waitForSelector('.seek-preview:not([hidden])', { timeout: 3000 }).catch(() => {});
  out.steps.hover = {
    preview: await page.textContent('.seek-preview-time'),
    valuetext: await page.getAttribute('.seek-input', 'aria-valuetext'),
  };
  await shot(page, 'desktop-chapter-hover');
  await page.mouse.move(640, 100);

  // A click on a transcript line plays from its start; the line is highlighted.
  await page.evaluate(() => { window.__seeked = 0; window.soriPlayer.video.addEventListener('seeked', () => { window.__seeked += 1; }); });
  await page.locator('.transcript-line').nth(scenario.line).click();
  await page.waitForFunction(() => window.__seeked > 0, null, { timeout: 10000 }).catch(() => {});
  const afterClick = await view(page);
  await page.waitForTimeout(400);
  out.steps.clicked = { right: afterClick, later: await sample(page, 6) };
  await shot(page, 'desktop-transcript-click');

  // Keyboard: 'c' turns them off and on again; Tab reaches the transcript lines as buttons.
  await page.locator('body').focus();
  await page.keyboard.press('c');
  const offByKey = await view(page);
  await page.keyboard.press('c');
  await page.waitForTimeout(400);
  out.steps.keys = { off: offByKey, on: await view(page) };

  // Remembered: a reload (same profile) starts with captions on.
  await open(page, `?asset=${encodeURIComponent(scenario.id)}`);
  const reloaded = await view(page);
  await play(page);
  await page.waitForTimeout(300);
  out.steps.reloaded = { before: reloaded, playing: await sample(page, 10) };

  // The same captions through dash.js.
  await open(page, `?asset=${encodeURIComponent(scenario.id)}&dash=1`);
  await play(page);
  out.steps.dash = await sample(page, 12);
  await shot(page, 'desktop-dash');
  out.fatal.push(...(await view(page)).fatal);
  await context.close();
}

async function phone(browser) {
  const context = await browser.newContext({ ...PHONE, serviceWorkers: 'block' });
  const page = await newPage(context, 'phone');
  await open(page, `?asset=${encodeURIComponent(scenario.id)}`);
  await page.evaluate(() => localStorage.setItem('sori:captions', 'true'));
  await open(page, `?asset=${encodeURIComponent(scenario.id)}`);
  await page.click('[data-action=play]');
  await page.waitForFunction(() => window.soriPlayer.video.currentTime > 1.5, null, { timeout: 15000 }).catch(() => {});
  await page.locator('#transcript').scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  out.steps.phone = await page.evaluate(() => {
    const lines = [...document.querySelectorAll('.transcript-line')].map((b) => b.getBoundingClientRect());
    const text = document.querySelector('.transcript-text');
    const overlay = document.querySelector('.captions span');
    return {
      viewport: window.innerWidth,
      scrollWidth: document.documentElement.scrollWidth,
      panelWidth: document.querySelector('#transcript').getBoundingClientRect().width,
      lineHeights: lines.map((r) => r.height),
      lineRights: lines.map((r) => r.right),
      fontSize: parseFloat(getComputedStyle(text).fontSize),
      overlay: overlay ? { text: overlay.textContent, right: overlay.getBoundingClientRect().right,
        left: overlay.getBoundingClientRect().left } : null,
      playing: !window.soriPlayer.video.paused,
    };
  });
  await shot(page, 'phone-transcript');
  await context.close();
}

const browser = await launch(scenario.chromium);
try {
  await desktop(browser);
  await phone(browser);
} catch (err) {
  out.error = String(err.stack || err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
