// Drive Chromium for test_analytics_players.py and test_dashboard.py; print what happened as JSON.
//
//   node analytics_drive.mjs '<scenario JSON>'
//
// Scenario: {"base", "chromium", "artifacts", "mode": "players" | "dashboard", ...}
//
// mode "players": {"jobs": [{"name", "player": "hlsjs" | "dashjs" | "shaka", "id", "seconds",
//   "linked"?: open the page on a link to the asset, "quitBeforeStart"?: hold the segments
//   back and close the page once play was asked for, "v1Only"?: Shaka without the page's v2
//   reporter}]}
//   hls.js and dash.js play on sori's own page (window.soriPlayer.load); Shaka, which the page
//   does not use, on a bare harness page served under the origin's address (so that its
//   requests and the reporter's POSTs are same-origin, as on a real site), which imports the
//   page's player/cmcd.js for its CMCD config and its v2 reporter. Each job plays `seconds`,
//   seeks, pauses, then its page is closed (pagehide: the last reports leave by beacon).
//   Per job: {checks, sid, reports (the v2 lines the reporter made), requests: [{url, cmcd}]
//   (media requests, with their decoded CMCD= value), posts: [{url, body}] (to /v1/cmcd),
//   pageErrors}.
//
// mode "dashboard": {"key"?: the write key to type when asked, "wrongKey"?: one to try first,
//   "viewports": [{"name", "width", "height", "mobile"?, "csv"?: export, "period"?: days to
//   switch to, "clickAsset"?: an episode whose row to click}]}
//   Opens /analytics per viewport, types the key when the page asks for one, reads every
//   chart back from the DOM: {views: {name: {statuses, errors, first (before the key), view:
//   {status, keyPrompt, charts: {id: {bars: [{key, label, value, width, height}], aria,
//   verdict, texts}}, tiles, overflow: {scrollWidth, clientWidth, overflowing}}, screenshot,
//   csv, csvName, period}}}.
//
// Every context uses Chromium's user agent without "Headless" in it: a headless browser is a
// bot to the OPAWG list the origin counts with, as it should be.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHAKA = path.join(HERE, 'node_modules', 'shaka-player', 'dist', 'shaka-player.compiled.js');
const scenario = JSON.parse(process.argv[2] || fs.readFileSync(0, 'utf8'));
fs.mkdirSync(scenario.artifacts, { recursive: true });
const began = Date.now();
const progress = (msg) => process.stderr.write(`+${Date.now() - began}ms ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Job {
  constructor(spec) {
    this.spec = spec;
    this.out = { checks: [], requests: [], posts: [], reports: [], sid: null, pageErrors: [] };
  }

  check(name, ok, detail = {}) {
    progress(`${this.spec.name}: ${ok ? 'ok' : 'FAIL'} ${name}`);
    this.out.checks.push({ name, ok: Boolean(ok), detail });
    return ok;
  }
}

async function context(browser, ua, device = {}) {
  return browser.newContext({ userAgent: ua, serviceWorkers: 'block', ...device });
}

// ---- players ---------------------------------------------------------------------------------

const HARNESS = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shaka with sori's CMCD</title></head>
<body style="background:#111;color:#eee;font:14px system-ui">
<video id="v" muted playsinline style="width:480px;height:60px"></video>
<script src="/__e2e/shaka.js"></script>
<script type="module">
import { CmcdReporter, newSessionId, shakaCmcd } from '/player/cmcd.js';
const video = document.getElementById('v');
window.harness = {
  video, reporter: null, player: null, errors: [],
  async play(url, id, withReporter = true) {
    const askedAt = performance.now();
    shaka.polyfill.installAll();
    const sid = newSessionId();
    const player = new shaka.Player();
    this.player = player;
    await player.attach(video);
    player.configure(shakaCmcd(id, sid));
    player.addEventListener('error', (e) => this.errors.push(String(e.detail && e.detail.code)));
    const stats = () => player.getStats();
    this.sid = sid;
    if (withReporter) {
      this.reporter = new CmcdReporter(video, { sid, cid: id, askedAt,
        bitrate: () => stats().streamBandwidth, throughput: () => stats().estimatedBandwidth });
      this.reporter.starting();
    }
    await player.load(url);
    await video.play();
  },
};
</script></body></html>`;

async function playerJob(browser, ua, job) {
  const { spec } = job;
  const ctx = await context(browser, ua, { viewport: { width: 1100, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => job.out.pageErrors.push(String(e)));
  const media = (req, status) => {
    const url = req.url();
    if (!url.includes(`/assets/${spec.id}/`)) return;
    job.out.requests.push({ url: url.replace(/\?.*/, ''), cmcd: new URL(url).searchParams.get('CMCD'), status });
  };
  ctx.on('response', (res) => media(res.request(), res.status()));
  ctx.on('requestfailed', (req) => media(req, `failed: ${req.failure()?.errorText}`));
  ctx.on('request', (req) => {
    if (req.url().endsWith('/v1/cmcd') && req.method() === 'POST') job.out.posts.push({ body: req.postData() || '' });
  });
  if (spec.quitBeforeStart) {
    // A network that holds every media segment back: the listener leaves before the start.
    await page.route((url) => url.pathname.endsWith('.m4s'), () => { /* never answered */ });
  }
  const base = scenario.base;
  if (spec.player === 'shaka') {
    await page.route(`${base}/__e2e/shaka.html`, (r) => r.fulfill({ status: 200, contentType: 'text/html', body: HARNESS }));
    await page.route(`${base}/__e2e/shaka.js`, (r) => r.fulfill({ status: 200, contentType: 'text/javascript', path: SHAKA }));
    await page.goto(`${base}/__e2e/shaka.html`);
    await page.waitForFunction(() => window.harness);
    await page.evaluate(([url, id, withReporter]) => {
      window.harness.play(url, id, withReporter).catch((e) => window.harness.errors.push(String(e)));
    }, [`${base}/assets/${spec.id}/manifest.mpd`, spec.id, !spec.v1Only]);
  } else {
    // `linked`: opened on a link to the asset, whose stream the page starts loading before
    // its modules run (index.html); the player adopts that hls.js instance.
    await page.goto(spec.linked ? `${base}/?asset=${encodeURIComponent(spec.id)}` : `${base}/`);
    await page.waitForFunction(() => window.soriPlayer);
    await page.evaluate(() => window.soriPlayer.ready);
    if (spec.linked) await page.waitForFunction(() => window.soriBoot.hls !== null, null, { timeout: 10000 }).catch(() => {});
    await page.evaluate(([id, dash]) => { window.soriPlayer.load(id, { dash }); }, [spec.id, spec.player === 'dashjs']);
    if (spec.linked) job.check('the early hls.js instance was adopted', await page.evaluate(() => window.soriBoot.adopted));
  }
  const video = spec.player === 'shaka' ? '() => window.harness.video' : '() => window.soriPlayer.video';
  const reporter = spec.player === 'shaka' ? 'window.harness.reporter' : 'window.soriPlayer.controller.cmcd';
  if (spec.quitBeforeStart) {
    const asked = await page.waitForFunction(`${reporter}?.state === 's'`, null, { timeout: 15000, polling: 50 })
      .then(() => true, () => false);
    await sleep(1000); // the playlists and the init segment arrive; the first segment never does
    job.check('play was asked for', asked);
    job.out.sid = await page.evaluate(`${reporter}?.sid ?? null`);
    job.out.made = await page.evaluate(`[...(${reporter}?.reports ?? [])]`);
    await page.close({ runBeforeUnload: true });
    await sleep(500);
    job.out.reports = job.out.posts.flatMap((p) => p.body.split('\n').filter(Boolean));
    await ctx.close();
    return;
  }
  const played = await page.waitForFunction(`(${video})().currentTime >= ${spec.seconds}`, null, { timeout: 30000, polling: 100 })
    .then(() => true, () => false);
  job.check(`plays ${spec.seconds} s`, played, await page.evaluate(`({ t: (${video})().currentTime })`));
  // a seek forward, playing again, then a pause
  await page.evaluate(`(${video})().currentTime += 3`);
  const resumed = await page.waitForFunction(`(() => { const v = (${video})(); return !v.seeking && !v.paused && v.readyState >= 3; })()`,
    null, { timeout: 15000, polling: 100 }).then(() => true, () => false);
  job.check('plays on after a seek', resumed);
  await sleep(600);
  await page.evaluate(`(${video})().pause()`);
  await sleep(300);
  job.out.sid = await page.evaluate(spec.v1Only ? 'window.harness.sid' : `${reporter}?.sid ?? null`);
  job.out.made = await page.evaluate(`[...(${reporter}?.reports ?? [])]`);
  await page.screenshot({ path: path.join(scenario.artifacts, `analytics-${spec.name}.png`) }).catch(() => {});
  // The page goes away: pagehide sends the last reports (sta=q) by beacon.
  await page.close({ runBeforeUnload: true });
  await sleep(500);
  job.out.reports = job.out.posts.flatMap((p) => p.body.split('\n').filter(Boolean));
  await ctx.close();
}

// ---- dashboard --------------------------------------------------------------------------------

async function readDashboard(page) {
  return page.evaluate(() => {
    const charts = {};
    for (const box of document.querySelectorAll('.chart')) {
      const svg = box.querySelector('svg');
      charts[box.id] = {
        aria: svg?.getAttribute('aria-label') ?? null,
        verdict: svg?.getAttribute('data-verdict') ?? null,
        bars: [...box.querySelectorAll('rect.bar')].map((r) => ({
          key: r.getAttribute('data-key'), label: r.getAttribute('data-label'),
          value: Number(r.getAttribute('data-value')), width: Number(r.getAttribute('width')),
          height: Number(r.getAttribute('height')),
        })),
        texts: [...box.querySelectorAll('text')].map((t) => t.textContent),
      };
    }
    const text = (sel) => document.querySelector(sel)?.textContent ?? null;
    const rootEl = document.documentElement;
    const overflowing = [...document.querySelectorAll('body *')].filter((n) => {
      const r = n.getBoundingClientRect();
      return r.width > 0 && (r.right > rootEl.clientWidth + 1 || r.left < -1);
    }).slice(0, 5).map((n) => `${n.tagName.toLowerCase()}#${n.id}.${n.className?.baseVal ?? n.className} ${Math.round(n.getBoundingClientRect().left)}+${Math.round(n.getBoundingClientRect().width)}`);
    return {
      status: window.soriDashboard?.status ?? null,
      keyPrompt: !document.querySelector('#key-needed').hidden,
      error: document.querySelector('#dash-error').hidden ? null : text('#dash-error-text'),
      tiles: { downloads: text('#t-downloads'), listeners: text('#t-listeners'), bytes: text('#t-bytes'),
        startup: text('#f-startup'), rebuffer: text('#f-rebuffer'), sessions: text('#f-sessions'),
        mtp: text('#f-mtp') },
      asset: window.soriDashboard?.asset ?? null,
      charts,
      overflow: { scrollWidth: rootEl.scrollWidth, clientWidth: rootEl.clientWidth, overflowing },
    };
  });
}

async function dashboardView(browser, ua, view, out) {
  const device = { viewport: { width: view.width, height: view.height },
    ...(view.mobile ? { deviceScaleFactor: 2, isMobile: true, hasTouch: true } : {}) };
  const ctx = await context(browser, ua, device);
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const statuses = [];
  page.on('response', (res) => { if (res.url().includes('/v1/analytics/')) statuses.push({ url: res.url(), status: res.status() }); });
  await page.goto(`${scenario.base}/analytics`);
  await page.waitForFunction(() => window.soriDashboard);
  await page.evaluate(() => window.soriDashboard.ready);
  const result = { errors, statuses };
  result.first = await readDashboard(page);
  if (result.first.keyPrompt) {
    await page.screenshot({ path: path.join(scenario.artifacts, `dashboard-${view.name}-key.png`) });
    if (scenario.wrongKey) {
      // a key the origin refuses: asked again, and told why
      await page.fill('#key-input', scenario.wrongKey);
      await page.click('#key-use');
      await page.waitForFunction(() => window.soriDashboard.status === 'key' && !document.querySelector('#key-refused').hidden,
        null, { timeout: 20000 }).catch(() => {});
      result.refused = await readDashboard(page);
      result.refused.message = await page.evaluate(() => document.querySelector('#key-refused').hidden ? null
        : document.querySelector('#key-refused').textContent);
    }
    if (scenario.key) {
      await page.fill('#key-input', scenario.key);
      await page.click('#key-use');
      await page.waitForFunction(() => window.soriDashboard.status === 'ready', null, { timeout: 20000 }).catch(() => {});
    }
  }
  await page.waitForFunction(() => {
    const d = window.soriDashboard;
    return d.status !== 'loading' && (d.status !== 'ready' || d.report !== null);
  }, null, { timeout: 20000 }).catch(() => {});
  await sleep(300); // a redraw at the final width, if the scroll bar came or went
  result.view = await readDashboard(page);
  const file = path.join(scenario.artifacts, `dashboard-${view.name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  result.screenshot = file;
  // The CSV export is a real download of the endpoint's CSV.
  if (view.csv && result.view.status === 'ready') {
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }).catch(() => null),
      page.click('#csv')]);
    result.csv = download ? fs.readFileSync(await download.path(), 'utf8') : null;
    result.csvName = download?.suggestedFilename() ?? null;
  }
  // An episode's row in the top list: its playback quality is shown.
  if (view.clickAsset && result.view.status === 'ready') {
    await page.click(`#chart-assets rect.hit[data-key="${view.clickAsset}"]`);
    await page.waitForFunction((id) => window.soriDashboard.asset === id && window.soriDashboard.report?.id === id,
      view.clickAsset, { timeout: 15000 }).catch(() => {});
    result.clicked = await page.evaluate(() => ({ asset: window.soriDashboard.asset, report: window.soriDashboard.report,
      picker: document.querySelector('#qoe-asset').value, sessions: document.querySelector('#f-sessions').textContent }));
  }
  // Another period: the reports are asked for again, a bar per day of it.
  if (view.period && result.view.status === 'ready') {
    await page.click(`[data-days="${view.period}"]`);
    await page.waitForFunction((d) => window.soriDashboard.status === 'ready'
      && window.soriDashboard.days === d && window.soriDashboard.report !== null, view.period, { timeout: 20000 }).catch(() => {});
    const after = await readDashboard(page);
    result.period = { days: view.period, bars: after.charts['chart-days'].bars, summary: await page.evaluate(() => window.soriDashboard.summary) };
  }
  out.views[view.name] = result;
  await ctx.close();
}

// ---- main -------------------------------------------------------------------------------------

const browser = await launch(scenario.chromium);
const ua = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser.version()} Safari/537.36`;
const out = { ua };
try {
  if (scenario.mode === 'players') {
    const jobs = scenario.jobs.map((spec) => new Job(spec));
    // one after the other: three players at once on a shared two-core machine would stall
    for (const job of jobs) {
      try {
        await playerJob(browser, ua, job);
      } catch (e) {
        job.check('the flow ran to the end', false, { error: String(e.stack || e) });
      }
    }
    out.jobs = Object.fromEntries(jobs.map((j) => [j.spec.name, j.out]));
  } else if (scenario.mode === 'dashboard') {
    out.views = {};
    for (const view of scenario.viewports) await dashboardView(browser, ua, view, out);
  }
} finally {
  await browser.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(out)}\n`);
