// One page load of the player, as a timeline: what the page fetched, what hls.js did, what
// the <video> element and Media Source Extensions did, in ms since navigation start.
// A diagnostic beside bench/startup.py (which gives the medians): it shows where start-up
// time goes.
//
//   node bench/startup_trace.mjs http://127.0.0.1:8080 ASSET_ID [RUNS]
//
// Each run is a fresh browser context; the first RUNS-1 print only their `playing` time,
// the last one prints its whole timeline.

import { Browser, initScript, REPORT } from './browser.mjs';

const [base, asset, runsArg] = process.argv.slice(2);
if (!base || !asset) {
  console.error('usage: node bench/startup_trace.mjs BASE_URL ASSET_ID [RUNS]');
  process.exit(2);
}
const runs = Number(runsArg || 3);
const QUIET_HLS_EVENTS = /fragLoading|fragProgress|bufferAppending|bufferAppended|bufferFlush|fpsDrop|levelUpdated|levelPtsUpdated|fragParsing|fragDecrypted/;

// Runs in the page before its scripts: marks what happens, and starts the asset through the
// page's test hook as soon as it exists (as bench/startup.mjs does).
function hook(onAssign, id, quiet, report) {
  const done = () => window[report]('{}');
  const marks = [];
  const mark = (name) => marks.push([Math.round(performance.now()), name]);
  window.__marks = marks;
  const quietRe = new RegExp(quiet);
  onAssign('Hls', (Hls) => {
    mark('hls.js evaluated');
    const trigger = Hls.prototype.trigger;
    Hls.prototype.trigger = function (event, data) {
      if (!quietRe.test(event)) mark(`hls ${event}`);
      return trigger.call(this, event, data);
    };
  });
  for (const ev of ['loadstart', 'loadedmetadata', 'loadeddata', 'canplay', 'playing', 'waiting']) {
    document.addEventListener(ev, () => mark(`video ${ev}`), true);
  }
  document.addEventListener('playing', done, { capture: true, once: true });
  const append = SourceBuffer.prototype.appendBuffer;
  SourceBuffer.prototype.appendBuffer = function (data) {
    mark(`appendBuffer ${data.byteLength} B`);
    return append.call(this, data);
  };
  const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (type) {
    mark(`addSourceBuffer ${type}`);
    return addSourceBuffer.call(this, type);
  };
  document.addEventListener('DOMContentLoaded', () => mark('DOMContentLoaded'));
  onAssign('soriPlayer', (player) => {
    mark('page script ready');
    player.load(id, {}).catch((err) => { mark(`load failed: ${err}`); done(); });
  });
}

const FETCHES = `performance.getEntriesByType('resource').map((e) => [
  Math.round(e.startTime), \`fetch \${new URL(e.name).pathname} (\${Math.round(e.startTime)}-\${Math.round(e.responseEnd)})\`])`;

const browser = Browser.launch(process.env.SORI_TEST_CHROMIUM || '/usr/bin/chromium');
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    const page = await browser.newPage(context,
      initScript(hook, asset, QUIET_HLS_EVENTS.source, REPORT));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the new window settles (bench/README)
    const reported = page.report(15000);
    await page.goto(`${base}/?asset=${encodeURIComponent(asset)}`);
    await reported;
    const marks = await page.evaluate('window.__marks');
    const fetches = await page.evaluate(FETCHES);
    const playing = marks.find(([, n]) => n === 'video playing')?.[0] ?? Infinity;
    console.log(`run ${i + 1}: ${playing === Infinity ? 'never playing' : `playing at ${playing} ms`}`);
    if (i === runs - 1) {
      for (const [t, what] of [...marks, ...fetches].sort((a, b) => a[0] - b[0])) {
        if (t <= playing) console.log(`${String(t).padStart(6)}  ${what}`);
      }
    }
    await page.close();
    await browser.closeContext(context);
  }
} finally {
  await browser.close();
}
