// Chromium for the live benchmark (bench/live.py), driven over its DevTools pipe
// (bench/browser.mjs) and steered by the Python side one JSON line at a time.
//
//   node bench/live_driver.mjs CHROMIUM      then, on stdin, one command per line:
//
//   {"op": "open", "id": "r1", "base": "http://127.0.0.1:P", "params": {...}, "settle": 1000}
//       a fresh browser context (empty cache, no cookies) whose new window settles `settle`
//       ms, then opens BASE/__bench_live.html?PARAMS: a page of our own, answered by this
//       driver (DevTools Fetch interception of that one URL, so the page is same-origin
//       with the media and needs no file on either server) that loads hls.js from
//       BASE/vendor/hls.min.js and plays `src` (see PAGE for the parameters).
//   {"op": "close", "id": "r1"}                 closes the page and its context
//   {"op": "quit"}
//
// Out, one JSON line each: {"id", "event": "opened"} once navigation is committed, then
// whatever the page reports ({"event": "ready"}, {"event": "playing", ...},
// {"event": "samples", ...}, {"event": "error", ...}), and {"id", "event": "closed"}.
// Times in page reports are epoch milliseconds (performance.timeOrigin + now()), on the
// same clock as Python's time.time().

import readline from 'node:readline';

import { Browser, REPORT } from './browser.mjs';

// The page. Parameters (query string):
//   src     the playlist to play (multivariant or media)
//   ll      1 = hls.js lowLatencyMode
//   start   hls.js startPosition (0 = from the start, -1 = the live edge)
//   sync    liveSyncDurationCount (for a live stream without parts)
//   retry   1 = retry a playlist that is not there yet (404) every 50 ms: an origin that
//           writes files has no playlist before its first segment
//   sample  seconds to sample the latency every 0.5 s once playing (0 = do not)
//   ready   the hls.js event that means "the player is waiting for the stream":
//           levelLoading (first media playlist request after a multivariant playlist)
//           or manifestLoading (a media playlist given directly)
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>sori live bench</title></head>
<body><video id="v" autoplay playsinline></video>
<script src="/vendor/hls.min.js"></script>
<script>
(() => {
  const q = new URLSearchParams(location.search);
  const now = () => performance.timeOrigin + performance.now();
  const report = (o) => window.${REPORT}(JSON.stringify(o));
  const video = document.getElementById('v');
  const cfg = { lowLatencyMode: q.get('ll') === '1', startPosition: Number(q.get('start') || 0),
                enableWorker: false, debug: false };
  if (q.get('sync')) cfg.liveSyncDurationCount = Number(q.get('sync'));
  if (q.get('retry') === '1') {
    const errorRetry = { maxNumRetry: 400, retryDelayMs: 50, maxRetryDelayMs: 50, backoff: 'linear',
                         shouldRetry: (c, n) => n < c.maxNumRetry };
    const policy = { default: { maxTimeToFirstByteMs: 10000, maxLoadTimeMs: 20000,
                                timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
                                errorRetry } };
    cfg.manifestLoadPolicy = policy;
    cfg.playlistLoadPolicy = policy;
  }
  const hls = new Hls(cfg);
  window.hls = hls;
  const readyEvent = q.get('ready') === 'manifestLoading' ? Hls.Events.MANIFEST_LOADING
    : Hls.Events.LEVEL_LOADING;
  let ready = false;
  hls.on(readyEvent, () => { if (!ready) { ready = true; report({ event: 'ready', t: now() }); } });
  const trace = [];
  if (q.get('trace') === '1') {
    for (const name of ['MANIFEST_LOADING', 'MANIFEST_LOADED', 'LEVEL_LOADING', 'LEVEL_LOADED',
      'FRAG_LOADING', 'FRAG_LOADED', 'BUFFER_APPENDED', 'FRAG_BUFFERED', 'LEVEL_UPDATED',
      'AUDIO_TRACK_LOADING', 'AUDIO_TRACK_LOADED']) {
      hls.on(Hls.Events[name], (_e, d) => {
        const frag = d && (d.part || d.frag);
        trace.push([Math.round(now()), name, d && d.url ? d.url.split('/').slice(-2).join('/')
          : frag ? String(frag.relurl || frag.sn) : '', d && d.details ? d.details.fragments.length + '/' + (d.details.partList ? d.details.partList.length : 0) : '']);
      });
    }
    for (const name of ['loadstart', 'loadedmetadata', 'loadeddata', 'canplay', 'play', 'playing', 'waiting', 'timeupdate']) {
      video.addEventListener(name, () => { if (trace.length < 400) trace.push([Math.round(now()), 'video:' + name, video.currentTime.toFixed(3), video.readyState]); });
    }
  }
  const errors = [];
  hls.on(Hls.Events.ERROR, (_e, d) => {
    errors.push(d.details + (d.response && d.response.code ? ' ' + d.response.code : '') + (d.error ? ' ' + d.error.message : '') + ' @' + Math.round(now()));
    if (d.fatal) report({ event: 'error', t: now(), error: d.details, errors: errors.slice(-10) });
  });
  let waiting = 0;
  video.addEventListener('waiting', () => { if (playing) waiting += 1; });
  let playing = false;
  video.addEventListener('playing', () => {
    if (playing) return;
    playing = true;
    report({ event: 'playing', t: now(), currentTime: video.currentTime,
             frag: hls.levels && hls.levels[hls.currentLevel] ? hls.currentLevel : null,
             errors: errors.slice(-10), trace,
             fetches: q.get('trace') === '1' ? performance.getEntriesByType('resource')
               .filter((e) => e.name.includes('.m3u8'))
               .map((e) => [Math.round(performance.timeOrigin + e.startTime),
                 e.name.split('/').slice(-2).join('/'), e.transferSize]) : [] });
    const seconds = Number(q.get('sample') || 0);
    if (seconds > 0) {
      // hls.js takes a playlist's EXT-X-START over startPosition -1: if that left the
      // playhead behind the live edge, jump to it (the player page's "jump to live").
      const edge = hls.liveSyncPosition;
      if (edge !== null && edge !== undefined && edge - video.currentTime > 0.5) {
        const from = video.currentTime;
        video.addEventListener('seeked', () => {
          setTimeout(() => sample(seconds, { jumped: [from, edge] }), 1000);
        }, { once: true });
        video.currentTime = edge;
      } else {
        sample(seconds, { jumped: null });
      }
    }
  });
  function sample(seconds, extra) {
    const samples = [];
    const started = now();
    const waitingBefore = waiting;
    const timer = setInterval(() => {
      const date = hls.playingDate;
      const b = video.buffered;
      samples.push({ t: now(), pdt: date ? date.getTime() : null, ct: video.currentTime,
                     latency: hls.latency, target: hls.targetLatency,
                     buffered: b.length ? b.end(b.length - 1) - video.currentTime : 0,
                     paused: video.paused, rate: video.playbackRate });
      if (now() - started >= seconds * 1000) {
        clearInterval(timer);
        report({ event: 'samples', samples, waiting: waiting - waitingBefore,
                 errors: errors.slice(-10), ...extra });
      }
    }, 500);
  }
  hls.attachMedia(video);
  hls.loadSource(q.get('src'));
  video.play().catch(() => {});
})();
</script></body></html>`;

const PAGE_PATH = '/__bench_live.html';

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const browser = Browser.launch(process.argv[2] || '/usr/bin/chromium');
const runs = new Map(); // id -> {context, page}

browser.listeners.add((msg) => {
  if (msg.method === 'Runtime.bindingCalled' && msg.params.name === REPORT) {
    for (const [id, run] of runs) {
      if (run.page && run.page.sessionId === msg.sessionId) {
        out({ id, ...JSON.parse(msg.params.payload) });
      }
    }
  } else if (msg.method === 'Fetch.requestPaused') {
    const body = Buffer.from(PAGE).toString('base64');
    browser.send('Fetch.fulfillRequest', {
      requestId: msg.params.requestId, responseCode: 200, body,
      responseHeaders: [{ name: 'Content-Type', value: 'text/html; charset=utf-8' },
        { name: 'Cache-Control', value: 'no-store' }],
    }, msg.sessionId).catch((err) => out({ event: 'driver-error', error: String(err) }));
  }
});

async function open(cmd) {
  const run = {};
  runs.set(cmd.id, run);
  try {
    run.context = await browser.newContext();
    run.page = await browser.newPage(run.context, '');
    await run.page.send('Fetch.enable', { patterns: [{ urlPattern: `*${PAGE_PATH}*` }] });
    if (cmd.settle) await new Promise((resolve) => setTimeout(resolve, cmd.settle));
    const query = new URLSearchParams(cmd.params).toString();
    await run.page.goto(`${cmd.base}${PAGE_PATH}?${query}`);
    out({ id: cmd.id, event: 'opened' });
  } catch (err) {
    out({ id: cmd.id, event: 'error', error: String(err) });
  }
}

async function close(cmd) {
  const run = runs.get(cmd.id);
  runs.delete(cmd.id);
  if (run) {
    await run.page?.close().catch(() => {});
    if (run.context) await browser.closeContext(run.context).catch(() => {});
  }
  out({ id: cmd.id, event: 'closed' });
}

const lines = readline.createInterface({ input: process.stdin });
let quitting = false;
for await (const line of lines) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  if (cmd.op === 'open') open(cmd);
  else if (cmd.op === 'close') await close(cmd);
  else if (cmd.op === 'quit') { quitting = true; break; }
}
for (const id of [...runs.keys()]) await close({ id });
await browser.close();
out({ event: 'quit', quitting });
