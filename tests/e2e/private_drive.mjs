// Drive Chromium for test_private_playback.py: raw players (hls.js, dash.js, Shaka on the bare
// live_page.html) given a signed or an unsigned URL of a private asset, and sori's own page
// (a key typed into its key field), all at once, then print what happened as JSON.
//
//   node private_drive.mjs '<scenario JSON>'
//
// The driver opens every page and loads its player first, prints `ready`, then waits for one
// line on stdin: {"t0": wall clock ms} (for a live stream, its first chunk). Each job starts
// `startAfter` seconds after t0.
//
// Scenario: {"artifacts", "chromium", "jobs": [
//   {"name", "kind": "raw", "player": "hlsjs"|"dashjs"|"shaka", "page": URL of live_page.html,
//    "url", "expect": "play"|"refuse", "startAfter", "seconds": media seconds to play,
//    "timeout": seconds},
//   {"name", "kind": "page", "base": origin URL, "id": private asset, "publicId": a public one,
//    "key", "dash": bool, "live": bool, "startAfter", "seconds", "timeout"}]}
// Output: {"jobs": {name: {checks: [{name, ok, detail}], requests: [{url, status}],
//          errors, fatal, pageErrors, marks}}}.

import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const scenario = JSON.parse(process.argv[2]);
fs.mkdirSync(scenario.artifacts, { recursive: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const began = Date.now();
const progress = (msg) => process.stderr.write(`+${Date.now() - began}ms ${msg}\n`);

class Job {
  constructor(spec) {
    this.spec = spec;
    this.out = { checks: [], requests: [], errors: [], fatal: [], pageErrors: [], marks: {} };
  }

  check(name, ok, detail = {}) {
    progress(`${this.spec.name}: ${ok ? 'ok' : 'FAIL'} ${name}`);
    this.out.checks.push({ name, ok: Boolean(ok), detail });
    return ok;
  }

  /** Wait until `fn()` (evaluated in the page) is truthy; its value, or null on timeout. */
  async until(fn, timeout, arg = null) {
    try {
      const handle = await this.page.waitForFunction(fn, arg, { timeout, polling: 100 });
      return await handle.jsonValue();
    } catch {
      return null;
    }
  }

  async shot(name) {
    await this.page.screenshot({ path: path.join(scenario.artifacts, `${name}.png`) }).catch(() => {});
  }
}

async function open(browser, job) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, serviceWorkers: 'block' });
  const page = await context.newPage();
  job.page = page;
  page.on('pageerror', (e) => job.out.pageErrors.push(String(e)));
  page.on('response', async (res) => {
    const url = res.url();
    if (url.includes('/lib/') || url.includes('/vendor/')) return;
    const rec = { url, status: res.status(), wall: Date.now() };
    if (url === job.spec.base + '/' || url.startsWith(`${job.spec.base}/?`)) {
      rec.referrerPolicy = await res.headerValue('referrer-policy').catch(() => null);
    }
    job.out.requests.push(rec);
  });
  page.on('requestfailed', (req) => job.out.requests.push({ url: req.url(), status: `failed: ${req.failure()?.errorText}` }));
  if (job.spec.kind === 'raw') {
    await page.exposeFunction('__report', (list, item) => { job.out[list].push(item); });
    await page.goto(`${job.spec.page}?player=${job.spec.player}`);
    await page.evaluate(() => window.live.prepare());
  }
}

/** A raw player on a signed URL plays `seconds`; on an unsigned one it gets 403s and
 *  plays nothing. */
async function rawFlow(job) {
  const { spec } = job;
  await job.page.evaluate(([url]) => { window.live.start(url).catch((e) => window.live.state.fatal.push({ start: String(e) })); }, [spec.url]);
  if (spec.expect === 'play') {
    // `seconds` of media played from the first `playing` (a live player may join at the edge)
    const reached = await job.until((s) => {
      const first = window.live.state.firstPlaying;
      return first && window.live.video.currentTime - first.t >= s && window.live.video.currentTime;
    }, spec.timeout * 1000, spec.seconds);
    if (reached !== null) job.out.marks.reachedWall = Date.now();
    job.check(`plays ${spec.seconds} s from the signed URL`, reached !== null, await job.page.evaluate(
      () => ({ currentTime: window.live.video.currentTime, firstPlaying: window.live.state.firstPlaying })));
    await job.shot(`private-${spec.name}`);
  } else {
    // Refused: every player gives up (or keeps retrying) without a frame of media.
    await job.until(() => window.live.state.fatal.length > 0, spec.timeout * 1000);
    const st = await job.page.evaluate(() => ({ t: window.live.video.currentTime, fatal: window.live.state.fatal.length }));
    job.check('plays nothing from the unsigned URL', st.t === 0, st);
    const denied = job.out.requests.filter((r) => r.status === 403);
    job.check('the origin answered 403', denied.length > 0, { requests: job.out.requests.slice(0, 10) });
    const media = job.out.requests.filter((r) => r.status < 400 && /\/assets\//.test(r.url));
    job.check('no request under /assets/ succeeded', media.length === 0, { media });
  }
  const st = await job.page.evaluate(() => window.live.state);
  job.out.errors = st.errors;
  job.out.fatal = st.fatal;
}

/** sori's page: the private asset is hidden without a key, listed with a lock badge once the
 *  key is entered in the key field, and plays (through /playback/{id}'s signed URLs). */
async function pageFlow(job) {
  const { spec } = job;
  const page = job.page;
  const card = (id) => `.card[data-asset-id="${id}"]`;
  await page.goto(`${spec.base}/`);
  await page.evaluate(() => window.soriPlayer.ready);
  await page.waitForSelector(card(spec.publicId), { timeout: 15000 }).catch(() => null);
  const before = await page.evaluate(([a, b]) => ({
    publicCard: Boolean(document.querySelector(a)), privateCard: Boolean(document.querySelector(b)),
  }), [card(spec.publicId), card(spec.id)]);
  job.check('without a key the gallery lists the public asset only', before.publicCard && !before.privateCard, before);
  const root = job.out.requests.find((r) => 'referrerPolicy' in r);
  job.check('the page says Referrer-Policy: no-referrer', root?.referrerPolicy === 'no-referrer', { root });
  await job.shot(`private-${spec.name}-no-key`);

  await page.fill('#key-input', spec.key);
  await page.click('#key-use');
  const listed = await page.waitForSelector(`${card(spec.id)} .badge-lock`, { timeout: 15000 }).then(() => true, () => false);
  job.check('with the key the private asset is listed with a lock badge', listed);
  const stored = await page.evaluate(() => ({ session: sessionStorage.getItem('sori:key'), local: localStorage.getItem('sori:key') }));
  job.check('the key is kept in sessionStorage only', stored.session === spec.key && stored.local === null, { stored: Boolean(stored.session) });
  if (!listed) return;
  if (spec.dash) {
    await page.evaluate(([id]) => window.soriPlayer.load(id, { dash: true }), [spec.id]);
  } else {
    await page.click(card(spec.id));
  }
  const reached = await job.until((s) => window.soriPlayer.video.currentTime >= s, spec.timeout * 1000, spec.seconds);
  const st = await page.evaluate(() => ({
    t: window.soriPlayer.video.currentTime, engine: window.soriPlayer.engine,
    fatal: window.soriPlayer.fatalErrors, error: document.querySelector('.error-message')?.textContent,
    download: document.querySelector('#download')?.getAttribute('href'),
    downloadHidden: document.querySelector('#download')?.hidden,
    live: window.soriPlayer.live,
  }));
  job.out.fatal = st.fatal;
  job.check(`the page plays the private asset (${spec.dash ? 'dash.js' : 'hls.js'})`, reached !== null && !st.fatal.length, st);
  const signed = job.out.requests.filter((r) => r.url.includes(`/assets/${spec.id}/~`));
  const refused = job.out.requests.filter((r) => r.url.includes(`/assets/${spec.id}/`) && r.status >= 400);
  job.check('its media came from signed URLs, none refused', signed.length > 0 && refused.length === 0,
    { signed: signed.length, refused: refused.slice(0, 5) });
  if (spec.live) {
    const events = await job.until(() => window.soriPlayer.live.events.length > 0 && window.soriPlayer.live.events.length, 10000);
    const sse = job.out.requests.filter((r) => r.url.includes(`/v1/live/${spec.id}/events`));
    job.check('the live events arrive (with the token of the signed URL)', events !== null
      && sse.some((r) => r.status === 200 && r.url.includes('token=')), { sse, events: st.live });
  } else {
    job.check('the download link is signed', /token=/.test(st.download || '') && !st.downloadHidden,
      { download: st.download ? st.download.replace(/token=[^&]+/, 'token=…') : null });
  }
  await job.shot(`private-${spec.name}`);
}

const browser = await launch(scenario.chromium);
const jobs = scenario.jobs.map((spec) => new Job(spec));
try {
  await Promise.all(jobs.map((job) => open(browser, job)));
  process.stdout.write('ready\n');
  const line = await new Promise((resolve) => {
    let buf = '';
    process.stdin.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]);
    });
  });
  const { t0 } = JSON.parse(line);
  await Promise.all(jobs.map(async (job) => {
    await sleep(t0 + job.spec.startAfter * 1000 - Date.now());
    job.out.marks.started = Date.now() - t0;
    try {
      await (job.spec.kind === 'page' ? pageFlow(job) : rawFlow(job));
    } catch (e) {
      job.check('the flow ran to the end', false, { error: String(e.stack || e) });
    }
    job.out.marks.ended = Date.now() - t0;
  }));
} finally {
  await browser.close().catch(() => {});
}
const out = { jobs: {} };
for (const job of jobs) out.jobs[job.spec.name] = job.out;
process.stdout.write(`${JSON.stringify(out)}\n`);
