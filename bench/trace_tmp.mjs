import { createRequire } from 'node:module';
const require = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const base = process.argv[2], asset = process.argv[3], n = Number(process.argv[4] || 5);
const ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];
function hook({ id }) {
  const marks = [];
  const m = (name) => marks.push([name, Math.round(performance.now())]);
  window.__marks = marks;
  let H;
  Object.defineProperty(window, 'Hls', { configurable: true, get() { return H; }, set(v) { H = v; m('hls.js evaluated');
    const ot = v.prototype.trigger; v.prototype.trigger = function (e, d) { if (!/fragLoading|fragProgress|bufferAppending|bufferAppended|bufferFlush|fpsDrop|levelUpdated|levelPtsUpdated|fragParsing|fragDecrypted/.test(e)) m('hls ' + e); return ot.call(this, e, d); }; } });
  const ox = XMLHttpRequest.prototype.open; XMLHttpRequest.prototype.open = function (meth, url, ...r) { m('xhr.open ' + String(url).split('/').slice(-2).join('/')); return ox.call(this, meth, url, ...r); };
  const MS = window.MediaSource; const oms = MS.prototype.addEventListener;
  document.addEventListener('loadstart', () => {}, true);
  const oattach = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'src');
  Object.defineProperty(HTMLMediaElement.prototype, 'src', { configurable: true, get() { return oattach.get.call(this); }, set(v) { m('video.src set'); oattach.set.call(this, v); } });
  for (const ev of ['loadstart', 'loadedmetadata', 'loadeddata', 'canplay', 'playing', 'waiting', 'play'])
    document.addEventListener(ev, () => m('video ' + ev), true);
  const oa = SourceBuffer.prototype.appendBuffer;
  SourceBuffer.prototype.appendBuffer = function (d) { m('append ' + d.byteLength); this.addEventListener('updateend', () => m('updateend'), { once: true }); return oa.call(this, d); };
  const oadd = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (t) { m('addSourceBuffer ' + t); return oadd.call(this, t); };
  const W = window.Worker;
  window.Worker = function (...a) { m('new Worker'); return new W(...a); };
  const op = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () { m('play()'); return op.call(this); };
  document.addEventListener('DOMContentLoaded', () => m('DOMContentLoaded'));
  let player;
  Object.defineProperty(window, 'soriPlayer', { configurable: true, get() { return player; },
    set(v) { player = v; m('soriPlayer defined'); v.load(id, {}).catch((e) => m('err ' + e)); } });
}
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
for (let i = 0; i < n; i++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.addInitScript(hook, { id: asset });
  if (process.env.LIGHT) await page.route('**/vendor/hls.min.js', (route) => route.fulfill({ path: 'player/node_modules/hls.js/dist/hls.light.min.js', contentType: 'text/javascript' }));
  await page.goto(`${base}/?asset=${asset}`, { waitUntil: 'commit' });
  await page.waitForFunction(() => window.__marks.some(([n]) => n === 'video playing'), null, { timeout: 15000, polling: 10 });
  const r = await page.evaluate(() => ({ marks: window.__marks, res: performance.getEntriesByType('resource').map((e) => [new URL(e.name).pathname.split('/').slice(-2).join('/'), Math.round(e.startTime), Math.round(e.responseEnd)]) }));
  if (i === n - 1) {
    const all = [...r.marks.map(([a, t]) => [t, a]), ...r.res.map(([p, s, e]) => [s, `fetch ${p} (${s}-${e})`])].sort((a, b) => a[0] - b[0]);
    for (const [t, a] of all) console.log(String(t).padStart(5), a);
  }
  const hr = r.res.find(([p]) => p.endsWith('hls.min.js'));
  console.log('playing', r.marks.find(([n]) => n === 'video playing')[1], 'hls loaded', hr && hr[2], 'evaluated', r.marks.find(([n]) => n === 'hls.js evaluated')[1]);
  await context.close();
}
await browser.close();
