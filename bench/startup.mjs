// Startup time of the player page: from navigation to the first `playing` event.
//
//   node bench/startup.mjs < scenario.json        (bench/startup.py writes the scenario)
//
// Scenario: {
//   "chromium": "/usr/bin/chromium",
//   "runs": [{"server": "sori", "base": "http://127.0.0.1:P", "asset": "id", "dash": false,
//             "warmup": false}, ...]                          in the order to run them
//   "timeout": 15000,                                        ms to wait for `playing`
//   "rtt": 0                                                 emulated round-trip time, ms
// }
// Each run gets a fresh browser context (empty cache, no cookies, no stored resume
// position) unless it says "warm": warm runs share one context per server, so they see the
// HTTP cache and V8's code cache a returning visitor has. A run opens BASE/?asset=ID and has the page's own test hook
// (window.soriPlayer.load, which waits for the library and starts the asset the way a click
// does) start playback as soon as the page's script defines it. The time is
// performance.now() at the first `playing` event of the <video>: milliseconds since the
// navigation started. Output: one JSON line {"runs": [{...run, "ms", "error", "resources"}]}.

import fs from 'node:fs';

import { DONE, launchChromium, waitForDone } from './browser.mjs';

const scenario = JSON.parse(fs.readFileSync(0, 'utf8'));
const timeout = scenario.timeout ?? 15000;

// Runs in the page before any of its scripts.
function hook({ id, dash, done }) {
  const mark = { playing: null, error: null };
  window.__startup = mark;
  document.addEventListener('playing', () => {
    if (mark.playing !== null) return;
    mark.playing = performance.now();
    console.debug(done);
  }, true); // capture: media events do not bubble
  let player;
  Object.defineProperty(window, 'soriPlayer', {
    configurable: true,
    get() { return player; },
    set(value) {
      player = value;
      value.load(id, { dash }).catch((err) => { mark.error = String(err); console.debug(done); });
    },
  });
}

const warmContexts = new Map(); // server base -> context kept across warm runs

async function contextFor(browser, run) {
  if (!run.warm) return browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (!warmContexts.has(run.base)) {
    warmContexts.set(run.base, await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  }
  return warmContexts.get(run.base);
}

async function once(browser, run) {
  const context = await contextFor(browser, run);
  const errors = [];
  let page;
  try {
    page = await context.newPage();
    page.on('pageerror', (err) => errors.push(String(err)));
    await page.addInitScript(hook, { id: run.asset, dash: Boolean(run.dash), done: DONE });
    if (scenario.rtt) {
      // A network with this round-trip time (Chromium's own emulation, as DevTools does).
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false, latency: scenario.rtt, downloadThroughput: -1, uploadThroughput: -1,
      });
    }
    const url = `${run.base}/?asset=${encodeURIComponent(run.asset)}${run.dash ? '&dash=1' : ''}`;
    const done = waitForDone(page, timeout);
    await page.goto(url, { waitUntil: 'commit' });
    await done;
    const result = await page.evaluate(() => ({
      ms: window.__startup.playing,
      error: window.__startup.error,
      engine: window.soriPlayer?.engine ?? null,
      // what was fetched before `playing`: [path, start, responseEnd] in ms
      resources: [performance.getEntriesByType('navigation')[0],
        ...performance.getEntriesByType('resource')]
        .filter((e) => e.startTime <= window.__startup.playing)
        .map((e) => [new URL(e.name).pathname, Math.round(e.startTime), Math.round(e.responseEnd)]),
    }));
    return { ...run, ...result, pageErrors: errors };
  } catch (err) {
    return { ...run, ms: null, error: String(err), pageErrors: errors };
  } finally {
    if (run.warm) await page?.close();
    else await context.close();
  }
}

const browser = await launchChromium(scenario.chromium);
const results = [];
try {
  for (const run of scenario.runs) results.push(await once(browser, run));
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify({ runs: results })}\n`);
