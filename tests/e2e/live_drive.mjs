// Drive the raw players (hls.js, dash.js, Shaka) in Debian's Chromium against live sori
// streams, all at once, and print what happened as JSON (test_live_clients.py asserts).
//
//   node live_drive.mjs '<scenario JSON>'
//
// Chromium is slow to start on a busy machine, so the driver first opens every page and
// loads its player's library, prints `ready` on a line of its own, and then waits for one
// line on stdin: {"t0": wall clock (ms) of the producers' first chunk}. Jobs start their
// players `startAfter` seconds after t0.
//
// Scenario: {
//   "page": "http://127.0.0.1:PORT/live_page.html",   the bare player page (the test serves it)
//   "artifacts": "/abs/dir", "chromium": "/usr/bin/chromium",
//   "streamSeconds": 14,           how long the producers push
//   "jobSeconds": 54,              a player's flow gives up after this
//   "jobs": [{"name", "player": "hlsjs"|"dashjs"|"shaka", "flow": "hlsjs"|"dashjs"|"shaka",
//             "url", "startAfter": seconds after t0, "afterFirstSegment": bool (HLS: and
//             not before the first media playlist lists a complete segment), "options": {...}}]
// }
// Output: {"jobs": {name: {checks: [{name, ok, detail}], state, marks, requests, errors,
//          fatal (the player's errors, as they came), hung (the page stopped answering),
//          pageErrors, consoleErrors, screenshots}}}. Exits non-zero only when it could not run.

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const scenario = JSON.parse(process.argv[2]);
fs.mkdirSync(scenario.artifacts, { recursive: true });
let streamEnd = null; // wall ms, once t0 is known
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const began = Date.now();
const progress = (msg) => process.stderr.write(`+${Date.now() - began}ms ${msg}\n`);

/** `promise`, or a rejection after `ms` saying what hung. */
function within(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

class Job {
  constructor(spec, page) {
    this.spec = spec;
    this.page = page;
    this.out = { checks: [], marks: {}, requests: [], pageErrors: [], consoleErrors: [], screenshots: [],
      errors: [], fatal: [], hung: false };
    this.started = Date.now();
  }

  check(name, ok, detail = {}) {
    progress(`${this.spec.name}: ${ok ? 'ok' : 'FAIL'} ${name}`);
    this.out.checks.push({ name, ok: Boolean(ok), detail });
    return ok;
  }

  mark(name, value = Date.now()) {
    this.out.marks[name] = value;
  }

  // (Each page call has a limit of its own: a page whose main thread is stuck answers
  // nothing, and Playwright's own timeouts run in the page.)
  read() {
    return within(this.page.evaluate(() => window.live.read()), 5000, 'reading the player');
  }

  state() {
    return within(this.page.evaluate(() => window.live.state), 5000, 'reading the page state');
  }

  /** Wait until `fn(reading)` holds (polled in the page every 100 ms); the last reading. */
  async until(fn, timeout, arg = null) {
    try {
      const handle = await within(this.page.waitForFunction(
        ([src, a]) => {
          const r = window.live.read();
          // eslint-disable-next-line no-new-func
          return new Function('r', 's', 'a', `return (${src})(r, s, a);`)(r, window.live.state, a) ? r : null;
        },
        [fn.toString(), arg], { timeout, polling: 100 }), timeout + 2000, 'waiting on the page');
      return await within(handle.jsonValue(), 5000, 'reading the page');
    } catch {
      return null;
    }
  }

  async shot(name) {
    const file = path.join(scenario.artifacts, `${name}.png`);
    await within(this.page.screenshot({ path: file }), 10000, 'a screenshot');
    this.out.screenshots.push(file);
  }

  /** Latency readings of the page's samples in [from, to] (wall ms) that `pick` takes. */
  async samples(from, to, pick) {
    const st = await this.state();
    return st.samples.filter((s) => s.wall >= from && s.wall <= to).map(pick).filter((v) => v != null);
  }
}

function stats(values) {
  if (!values.length) return { n: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: values.length, min: sorted[0], median: at(0.5), max: sorted[sorted.length - 1],
    mean: values.reduce((a, b) => a + b, 0) / values.length };
}

/** Until the first media playlist of the HLS master `url` lists a complete segment. */
async function firstSegment(url, timeout = 15000) {
  const deadline = Date.now() + timeout;
  const master = await (await fetch(url)).text();
  const media = new URL(master.split('\n').find((l) => l && !l.startsWith('#')).trim(), url);
  while (Date.now() < deadline) {
    if ((await (await fetch(media)).text()).includes('#EXTINF')) return true;
    await sleep(100);
  }
  return false;
}

async function startPlayer(job) {
  await sleep(scenario.t0 + (job.spec.startAfter ?? 0) * 1000 - Date.now());
  if (job.spec.afterFirstSegment) {
    job.check('the first segment is complete before the player opens the stream',
      await firstSegment(job.spec.url), {});
  }
  job.mark('start');
  await job.page.evaluate(() => setInterval(() => window.live.sample('tick'), 200));
  try {
    await within(job.page.evaluate(([u, o]) => window.live.start(u, o), [job.spec.url, job.spec.options ?? {}]),
      15000, 'live.start (the player loading the stream)');
  } catch (err) {
    job.check('the player loads the stream', false, { error: String(err.message || err).slice(0, 2000) });
    job.check('playback starts (`playing`)', false, { reason: 'the player did not load the stream' });
    return null;
  }
  const first = await job.until((r, s) => s.firstPlaying !== null, 15000);
  const st = await job.state();
  job.mark('firstPlaying', st.firstPlaying?.wall ?? null);
  job.check('playback starts (`playing`)', first !== null && st.firstPlaying,
    { firstPlaying: st.firstPlaying, msAfterStart: st.firstPlaying ? st.firstPlaying.wall - job.out.marks.start : null });
  return st.firstPlaying;
}

async function advances(job, by, timeout = 10000) {
  const from = (await job.read()).t;
  const r = await job.until((x, s, a) => !x.paused && x.t > a, timeout, from + by);
  job.check(`time advances by ${by} s while playing`, r !== null, { from, to: (await job.read()).t });
  return r !== null;
}

/** Until the stream has ended and the player has played to the end. */
async function toTheEnd(job, label, ended, timeout) {
  const r = await job.until(ended, timeout);
  const last = await job.read();
  job.mark('reachedEnd', r ? Date.now() : null);
  job.check(`after the end, playback reaches the end (${label})`, r !== null, { last });
  return r;
}

// ---- flows ------------------------------------------------------------------------------

async function hlsjsFlow(job) {
  const first = await startPlayer(job);
  if (!first) return;
  job.check('starts from the beginning: currentTime near 0 at `playing`', first.t < 0.5, { t: first.t });
  await advances(job, 2);
  const before = await job.read();
  job.mark('beforeSeek', before);
  await job.shot(`live-hlsjs-from-start`);
  // The live edge: hls.liveSyncPosition (PART-HOLD-BACK behind the last part).
  const seekToEdge = () => job.page.evaluate(() => {
    const p = window.live.player;
    const pos = p.liveSyncPosition;
    const at = Date.now(); // the page's clock, before `seeking` and `seeked` can fire
    if (pos != null) window.live.video.currentTime = pos;
    return { target: pos, seekedAt: at };
  });
  let { target, seekedAt } = await seekToEdge();
  job.mark('seekTo', target);
  job.check('hls.liveSyncPosition is known and ahead of the playhead', target != null && target > before.t + 1,
    { liveSyncPosition: target, t: before.t });
  let seeked = await job.until((r, s, a) => s.events.some((e) => e.name === 'seeked' && e.wall >= a) && !r.paused,
    8000, seekedAt);
  // A seek past the buffered end while hls.js switches level can be taken back by hls.js
  // itself (seen once in CI: the playhead went on from before the seek). That is the
  // player's doing, not the stream's: recorded, and the seek made once more, so that what
  // is checked below stays what the origin serves at the live edge.
  if (seeked !== null && seeked.t < target - 1) {
    const st = await job.state();
    job.mark('seekUndone', { reading: seeked, events: st.events.filter((e) => e.wall >= seekedAt).slice(0, 20) });
    ({ target, seekedAt } = await seekToEdge());
    job.mark('seekAgainTo', target);
    seeked = await job.until((r, s, a) => s.events.some((e) => e.name === 'seeked' && e.wall >= a) && !r.paused,
      8000, seekedAt);
  }
  job.check('the seek to the live edge completes and playback goes on', seeked !== null, { after: await job.read() });
  await advances(job, 1);
  const from = Date.now();
  await sleep(2500);
  const lat = await job.samples(from, Date.now(), (s) => (s.paused ? null : s.pdtLatency));
  job.mark('latency', stats(lat));
  job.mark('latencyBeforeSeek', before.pdtLatency);
  job.check('latency at the live edge (Date.now() - hls.playingDate) stays below 2.5 s',
    lat.length >= 5 && Math.max(...lat) < 2.5, { latency: stats(lat), beforeSeek: before.pdtLatency });
  await job.shot('live-hlsjs-at-live-edge');
  // ENDLIST: hls.js sees the playlist end (details.live false); with liveDurationInfinity the
  // duration turns from Infinity to the stream's length.
  const end = await job.until((r) => r.live === false && Number.isFinite(Number(r.duration)),
    Math.max(5000, streamEnd - Date.now() + 10000));
  const st = await job.state();
  job.mark('endList', st.endListAt ?? null);
  job.check('hls.js sees the ENDLIST: not live any more and the duration becomes finite', end !== null,
    { reading: end ?? await job.read(), endListAt: st.endListAt, streamEnd });
  // (NaN before the first `loadedmetadata`.)
  const durationWhileLive = st.samples.filter((s) => s.wall < streamEnd - 1000 && s.duration !== 'NaN')
    .map((s) => s.duration);
  job.check('while live the duration was Infinity', durationWhileLive.length > 0
    && durationWhileLive.every((d) => d === 'Infinity'), { durations: [...new Set(durationWhileLive)] });
  await toTheEnd(job, '`ended` or currentTime at the duration',
    (r, s) => s.ended || (Number.isFinite(Number(r.duration)) && r.t >= Number(r.duration) - 0.25), 15000);
}

async function dashjsFlow(job) {
  const first = await startPlayer(job);
  if (!first) return;
  await advances(job, 2);
  await job.shot('live-dashjs-playing');
  const from = Date.now();
  await sleep(3000);
  const reading = await job.read();
  const lat = await job.samples(from, Date.now(), (s) => (s.paused || !s.isDynamic ? null : s.latency));
  job.mark('latency', stats(lat));
  job.mark('settings', { lowLatency: reading.lowLatency, targetLatency: reading.targetLatency });
  job.check('dash.js reports a live latency (getCurrentLiveLatency) below 4 s',
    lat.length >= 5 && lat.every((v) => v > 0) && Math.max(...lat) < 4, { latency: stats(lat), reading });
  const stat = await job.until((r) => r.isDynamic === false, Math.max(5000, streamEnd - Date.now() + 10000));
  const st = await job.state();
  job.mark('static', st.staticAt ?? null);
  job.check('after the end dash.js takes the MPD as static', stat !== null,
    { reading: stat ?? await job.read(), notes: st.notes.slice(-6) });
  await toTheEnd(job, '`ended` or currentTime at the duration',
    (r, s) => s.ended || (Number.isFinite(Number(r.duration)) && r.t >= Number(r.duration) - 0.25), 15000);
  await job.shot('live-dashjs-ended');
}

async function shakaFlow(job) {
  const first = await startPlayer(job);
  if (!first) return;
  await advances(job, 2);
  const from = Date.now();
  await sleep(2000);
  const lat = await job.samples(from, Date.now(), (s) => (s.paused || !s.isLive ? null : s.latency));
  job.mark('latency', stats(lat)); // Shaka's getStats().liveLatency (DASH only)
  job.mark('pdtLatency', stats(await job.samples(from, Date.now(),
    (s) => (s.paused || !s.isLive ? null : s.pdtLatency)))); // now - getPlayheadTimeAsDate()
  await job.shot(`live-${job.spec.name}`);
  // After the end: Shaka sees the stream is no longer live and plays to its end.
  await toTheEnd(job, 'not live any more, `ended` or currentTime at the end of the seek range',
    (x, s) => s.ended || (x.isLive === false && x.t >= x.seekEnd - 0.3),
    Math.max(5000, streamEnd - Date.now() + 12000));
  job.mark('final', await job.read());
}

const FLOWS = { hlsjs: hlsjsFlow, dashjs: dashjsFlow, shaka: shakaFlow };

/** A page with the job's player library loaded, and its request log. */
async function prepareJob(browser, spec) {
  const context = await browser.newContext({ viewport: { width: 680, height: 760 }, serviceWorkers: 'block' });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const job = new Job(spec, page);
  const t = () => Date.now() - (scenario.t0 || job.started); // ms after t0
  const pending = new Map();
  page.on('pageerror', (err) => job.out.pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (spec.options?.debug || msg.type() === 'error' || msg.type() === 'warning') {
      job.out.consoleErrors.push(`${msg.type()} @${t()}: ${msg.text().slice(0, 400)}`);
    }
  });
  page.on('request', (req) => pending.set(req, { t: t(), wall: Date.now(), method: req.method(), url: req.url() }));
  const done = (req, status) => {
    const rec = pending.get(req) || { t: t(), url: req.url() };
    pending.delete(req);
    rec.status = status;
    rec.ms = Date.now() - rec.wall;
    if (!rec.url.includes('/lib/')) job.out.requests.push(rec);
  };
  page.on('requestfinished', async (req) => {
    const res = await req.response().catch(() => null);
    done(req, res ? res.status() : 'no response');
  });
  page.on('requestfailed', (req) => done(req, `failed: ${req.failure()?.errorText}`));
  // Player errors as they happen (live_page.html's report()), kept even if the page hangs.
  await page.exposeFunction('__report', (list, item) => { job.out[list].push(item); });
  job.pending = pending;
  job.context = context;
  await page.goto(`${scenario.page}?player=${spec.player}`, { waitUntil: 'load' });
  await page.evaluate(() => window.live.prepare());
  return job;
}

async function runJob(job) {
  const { spec, pending, context } = job;
  try {
    await within(FLOWS[spec.flow](job), scenario.jobSeconds * 1000, `the ${spec.name} flow`);
  } catch (err) {
    job.check('driver ran to the end', false, { error: String(err.stack || err) });
  }
  try {
    job.out.state = await job.state();
  } catch (err) {
    // The page no longer answers: its main thread is busy (a player in a loop).
    job.out.hung = true;
    job.out.state = { error: String(err) };
    job.check('the page still answers after the flow', false, { error: String(err) });
  }
  for (const rec of pending.values()) job.out.requests.push({ ...rec, status: 'pending at the end' });
  job.out.requests.sort((a, b) => a.t - b.t);
  await within(context.close(), 5000, 'closing the page').catch((err) => progress(String(err)));
  progress(`${spec.name}: done`);
  return job.out;
}

const browser = await launch(scenario.chromium, scenario.chromiumArgs || []);
const out = { jobs: {} };
try {
  const jobs = await Promise.all(scenario.jobs.map((spec) => prepareJob(browser, spec)));
  progress('pages ready');
  process.stdout.write('ready\n');
  const line = await new Promise((resolve, reject) => {
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) {
        process.stdin.pause();
        resolve(buf.slice(0, buf.indexOf('\n')));
      }
    });
    process.stdin.on('end', () => reject(new Error('stdin closed before t0')));
  });
  scenario.t0 = JSON.parse(line).t0;
  streamEnd = scenario.t0 + scenario.streamSeconds * 1000;
  progress(`t0 in ${scenario.t0 - Date.now()} ms`);
  const results = await Promise.all(jobs.map((job) => runJob(job)));
  scenario.jobs.forEach((spec, i) => { out.jobs[spec.name] = results[i]; });
} finally {
  await within(browser.close(), 10000, 'closing the browser').catch((err) => progress(String(err)));
}
process.stdout.write(`${JSON.stringify(out)}\n`);
