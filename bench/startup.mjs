// Startup time of the player page: from navigation to the first `playing` event.
//
//   node bench/startup.mjs < scenario.json        (bench/startup.py writes the scenario)
//
// Scenario: {
//   "chromium": "/usr/bin/chromium",
//   "runs": [{"server": "sori", "base": "http://127.0.0.1:P", "asset": "id", "dash": false,
//             "warmup": false}, ...]                          in the order to run them
//   "timeout": 15000,                                        ms to wait for `playing`
//   "rtt": 0,                                                emulated round-trip time, ms
//   "settle": 1000                                           ms a new window gets before the page
// }
// Each run gets a fresh browser context (empty cache, no cookies, no stored resume
// position) unless it says "warm": warm runs share one context per server, so they see the
// HTTP cache and V8's code cache a returning visitor has. A run opens BASE/?asset=ID and has
// the page's own test hook (window.soriPlayer.load, which waits for the library and starts
// the asset the way a click does) start playback as soon as the page's script defines it.
// The time is performance.now() at the first `playing` event of the <video>: milliseconds
// since the navigation started. The hook reports it through a DevTools binding, and nothing
// else is asked of the page until then (bench/browser.mjs: why not Playwright).
// Output: one JSON line {"runs": [{...run, "ms", "error", "resources"}]}.

import fs from 'node:fs';

import { Browser, initScript, REPORT } from './browser.mjs';

const scenario = JSON.parse(fs.readFileSync(0, 'utf8'));
const timeout = scenario.timeout ?? 15000;

// Runs in the page before any of its scripts (serialised into it with its arguments).
function hook(onAssign, id, dash, report) {
  let reported = false;
  const send = (value) => {
    if (reported) return;
    reported = true;
    window[report](JSON.stringify(value));
  };
  document.addEventListener('playing', () => send({ ms: performance.now() }), true); // capture: media events do not bubble
  onAssign('soriPlayer', (player) => {
    player.load(id, { dash }).catch((err) => send({ error: String(err) }));
  });
}

// What was fetched before `playing`: [path, start, responseEnd] in ms.
const RESOURCES = `(() => {
  return [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
    .map((e) => [new URL(e.name).pathname, Math.round(e.startTime), Math.round(e.responseEnd)]);
})()`;

const warmContexts = new Map(); // server base -> context kept across warm runs

async function contextFor(browser, run) {
  if (!run.warm) return browser.newContext();
  if (!warmContexts.has(run.base)) warmContexts.set(run.base, await browser.newContext());
  return warmContexts.get(run.base);
}

async function once(browser, run) {
  const context = await contextFor(browser, run);
  let page;
  try {
    page = await browser.newPage(context, initScript(hook, run.asset, Boolean(run.dash), REPORT));
    if (scenario.rtt) await page.emulateLatency(scenario.rtt);
    if (scenario.settle) await new Promise((resolve) => setTimeout(resolve, scenario.settle));
    const url = `${run.base}/?asset=${encodeURIComponent(run.asset)}${run.dash ? '&dash=1' : ''}`;
    const reported = page.report(timeout);
    await page.goto(url);
    const { ms = null, error = null } = await reported;
    if (ms === null) return { ...run, ms, error: error ?? 'no time reported' };
    const resources = (await page.evaluate(RESOURCES)).filter(([, start]) => start <= ms);
    const engine = await page.evaluate('window.soriPlayer?.engine ?? null');
    return { ...run, ms, error, engine, resources };
  } catch (err) {
    return { ...run, ms: null, error: String(err) };
  } finally {
    await page?.close().catch(() => {});
    if (!run.warm) await browser.closeContext(context).catch(() => {});
  }
}

const browser = Browser.launch(scenario.chromium);
const results = [];
try {
  for (const run of scenario.runs) results.push(await once(browser, run));
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify({ runs: results })}\n`);
