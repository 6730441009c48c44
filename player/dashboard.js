// The listening analytics dashboard (/analytics, player/analytics.html).
//
// Reads the origin's reports: GET /v1/analytics/summary?from=&to= (downloads, listeners and
// bytes, per day, per asset, per country and per app) and GET /v1/analytics/assets/{id}
// (the same for one asset, plus the players' quality of experience from CMCD: startup,
// rebuffering, sessions, renditions played), and draws them (player/charts.js). The period
// is whole UTC days, as the origin counts them. The reports need the write key when the
// origin has keys: the page uses the key of the player page (player/api.js, this tab only)
// and asks for one when the origin answers 401.
//
// Test hook: window.soriDashboard (bottom of this file).

import { currentKey, setKey } from './api.js';
import { mount, columns, bars, mix, meter } from './charts.js';
import { formatBitrate, store } from './util.js';

const $ = (sel) => document.querySelector(sel);
const DAY_MS = 86400000;
const PERIODS = [7, 30, 90];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const state = {
  days: PERIODS.includes(store.get('sori:dash:days')) ? store.get('sori:dash:days') : 30,
  summary: null,
  asset: null, // id of the asset whose playback quality is shown
  report: null, // its report
  titles: new Map(), // asset id -> record (title, renditions), when the library could be read
  status: 'loading', // 'loading' | 'ready' | 'key' (a key is needed) | 'error'
};

// ---- formatting ---------------------------------------------------------------------------------

/** 12345 -> "12,345"; 1234567 -> "1.2M". */
export function formatCount(n) {
  if (!Number.isFinite(n)) return '–';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** 1234 -> "1.2 kB", 5e9 -> "5.0 GB" (powers of 1000, as networks count). */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n <= 0) return '0 B';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log10(n) / 3));
  const v = n / 1000 ** i;
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
}

/** 95 -> "1:35", 4000 -> "1 h 07 min". */
function formatDuration(s) {
  if (!Number.isFinite(s) || s <= 0) return '0 s';
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, '0')} min`;
}

function formatMs(ms) {
  if (!Number.isFinite(ms)) return '–';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

function formatRatio(r) {
  if (!Number.isFinite(r)) return '–';
  const pct = r * 100;
  return `${pct === 0 ? '0' : pct < 0.1 ? '<0.1' : pct.toFixed(pct < 10 ? 1 : 0)} %`;
}

/** "2026-12-02" -> "Dec 2". */
function dayLabel(day) {
  const [, m, d] = day.split('-').map(Number);
  return `${MONTHS[m - 1]} ${d}`;
}

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

/** The period's first and last UTC days, today included. */
export function period(days, now = Date.now()) {
  return { from: isoDay(now - (days - 1) * DAY_MS), to: isoDay(now) };
}

/** Every day from `from` to `to`, with the report's figures (zero where it has none). */
export function everyDay(from, to, reported = []) {
  const byDay = new Map(reported.map((d) => [d.day, d]));
  const out = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS) {
    const day = isoDay(t);
    out.push({ day, downloads: 0, listeners: 0, bytes: 0, ...byDay.get(day) });
  }
  return out;
}

let regionNames = null;
function countryName(code) {
  if (code === 'ZZ' || code === '??' || !code) return 'Unknown';
  try {
    regionNames ??= new Intl.DisplayNames(['en'], { type: 'region' });
    return regionNames.of(code) || code;
  } catch {
    return code;
  }
}

// ---- the origin ---------------------------------------------------------------------------------

class KeyNeeded extends Error {}

async function request(url, accept = 'application/json') {
  const key = currentKey();
  let res;
  try {
    res = await fetch(url, { headers: { Accept: accept, ...(key ? { Authorization: `Bearer ${key}` } : {}) } });
  } catch {
    throw new Error('The server could not be reached. Check that `sori serve` is running.');
  }
  if (res.status === 401 || res.status === 403) {
    throw new KeyNeeded(key ? 'The origin did not accept this key: enter another one.' : '');
  }
  if (!res.ok) {
    let message = `The server answered ${res.status} ${res.statusText}.`;
    try { message = (await res.json()).error || message; } catch { /* not JSON */ }
    if (res.status === 404 && /\/v1\/analytics\/summary/.test(url)) {
      message = 'This origin serves no analytics ([analytics] enabled = false, or an older sori).';
    }
    throw new Error(message);
  }
  return res;
}

const getJSON = async (url) => (await request(url)).json();

function query({ from, to }, extra = {}) {
  return new URLSearchParams({ from, to, ...extra }).toString();
}

// ---- drawing ------------------------------------------------------------------------------------

function titleOf(id) {
  return state.titles.get(id)?.title || id;
}

function renderTotals(s) {
  $('#t-downloads').textContent = formatCount(s.downloads);
  $('#t-listeners').textContent = formatCount(s.listeners);
  $('#t-bytes').textContent = formatBytes(s.bytes);
}

function renderSummary(s, span) {
  renderTotals(s);
  $('#dash-range').textContent = `${dayLabel(span.from)} – ${dayLabel(span.to)}, UTC`;
  const days = everyDay(span.from, span.to, s.days || []);
  mount($('#chart-days'), (w) => columns(w, {
    items: days.map((d) => ({
      key: d.day, label: dayLabel(d.day), value: d.downloads,
      title: `${dayLabel(d.day)}: ${formatCount(d.downloads)} downloads, ${formatCount(d.listeners)} listeners, ${formatBytes(d.bytes)}`,
    })),
    format: formatCount, label: 'Downloads per day', emptyText: 'No downloads in this period',
  }));
  const assets = (s.assets || []).filter((a) => a.downloads > 0);
  mount($('#chart-assets'), (w) => bars(w, {
    items: assets.map((a) => ({ key: a.id, label: titleOf(a.id), value: a.downloads, sub: `· ${formatBytes(a.bytes)}` })),
    format: formatCount, label: 'Downloads per episode', emptyText: 'No downloads in this period',
  }));
  const countries = Object.entries(s.countries || {});
  mount($('#chart-countries'), (w) => bars(w, {
    items: countries.map(([cc, n]) => ({ key: cc, label: countryName(cc), value: n })),
    format: formatCount, label: 'Downloads per country', emptyText: 'No countries yet',
  }));
  const apps = Object.entries(s.apps || {});
  mount($('#chart-apps'), (w) => bars(w, {
    items: apps.map(([name, n]) => ({ key: name, label: name, value: n })),
    format: formatCount, label: 'Downloads per app', emptyText: 'No apps yet',
  }));
}

/** The episode picker: the period's assets by downloads, then the rest of the library. */
function renderPicker(s) {
  const select = $('#qoe-asset');
  const ids = [...(s.assets || [])].sort((a, b) => b.downloads - a.downloads || b.bytes - a.bytes).map((a) => a.id);
  for (const id of state.titles.keys()) if (!ids.includes(id)) ids.push(id);
  if (!ids.includes(state.asset)) state.asset = ids[0] ?? null;
  select.replaceChildren(...ids.map((id) => {
    const o = document.createElement('option');
    o.value = id;
    o.textContent = titleOf(id);
    o.selected = id === state.asset;
    return o;
  }));
  select.disabled = !ids.length;
}

function renditionLabel(assetId, id) {
  const r = (state.titles.get(assetId)?.renditions || []).find((x) => x.id === id);
  if (!r) return id;
  const size = r.height ? `${r.height}p` : formatBitrate(r.bandwidth);
  return `${id} · ${size}`;
}

function renderQoe(id, r) {
  const startup = r?.startup_ms_p50 ?? null;
  const ratio = r?.rebuffer_ratio ?? null;
  $('#f-startup').textContent = startup === null ? '–' : formatMs(startup);
  $('#f-rebuffer').textContent = ratio === null ? '–' : formatRatio(ratio);
  $('#f-sessions').textContent = r ? formatCount(r.sessions ?? 0) : '–';
  const bits = r ? [
    `${formatCount(r.rebuffers ?? 0)} stall${r.rebuffers === 1 ? '' : 's'}`,
    `${formatCount(r.exits_before_start ?? 0)} left before start`,
  ] : [];
  $('#f-sessions-sub').textContent = bits.join(' · ');
  const mtp = r?.mtp_kbps_p50;
  $('#f-mtp').textContent = Number.isFinite(mtp) ? formatBitrate(mtp * 1000) : '–';
  mount($('#m-startup'), (w) => meter(w, { value: startup, max: 5000, good: 1000, fair: 3000, label: 'Startup' }));
  mount($('#m-rebuffer'), (w) => meter(w, { value: ratio, max: 0.1, good: 0.01, fair: 0.03, label: 'Rebuffering' }));
  const renditions = Object.entries(r?.renditions || {});
  mount($('#chart-renditions'), (w) => mix(w, {
    items: renditions.map(([rid, secs]) => ({ key: rid, label: renditionLabel(id, rid), value: secs })),
    format: formatDuration, label: 'Time played per rendition', emptyText: 'No playback reported for this episode',
  }));
}

function show(status, message = '') {
  state.status = status;
  $('#key-needed').hidden = status !== 'key';
  $('#dash-error').hidden = status !== 'error';
  $('#dash-error-text').textContent = message;
  $('#dash-body').hidden = status === 'key' || status === 'error';
  $('#key-refused').textContent = status === 'key' ? message : '';
  $('#key-refused').hidden = !(status === 'key' && message);
  if (status === 'key') $('#key-input').focus({ preventScroll: true });
}

// ---- loading ------------------------------------------------------------------------------------

let generation = 0;

async function loadAsset(id, span, gen) {
  state.asset = id;
  state.report = null;
  if (!id) { renderQoe(null, null); return; }
  try {
    const r = await getJSON(`/v1/analytics/assets/${encodeURIComponent(id)}?${query(span)}`);
    if (gen !== generation) return;
    state.report = r;
    renderQoe(id, r);
  } catch (err) {
    if (gen !== generation) return;
    if (err instanceof KeyNeeded) { show('key', err.message); return; }
    renderQoe(id, null);
  }
}

/** Read the period's reports and draw them. */
async function load() {
  const gen = ++generation;
  const span = period(state.days);
  const body = $('#dash-body');
  body.setAttribute('aria-busy', 'true');
  state.status = 'loading';
  try {
    const [summary, library] = await Promise.all([
      getJSON(`/v1/analytics/summary?${query(span)}`),
      getJSON('/v1/assets').catch(() => null), // titles only: the ids do without
    ]);
    if (gen !== generation) return;
    if (library?.assets) state.titles = new Map(library.assets.map((a) => [a.id, a]));
    state.summary = summary;
    show('ready');
    renderSummary(summary, span);
    renderPicker(summary);
    await loadAsset(state.asset, span, gen);
  } catch (err) {
    if (gen !== generation) return;
    if (err instanceof KeyNeeded) show('key', err.message);
    else show('error', err.message);
  } finally {
    if (gen === generation) body.removeAttribute('aria-busy');
  }
}

async function exportCsv() {
  const span = period(state.days);
  const button = $('#csv');
  button.disabled = true;
  try {
    const res = await request(`/v1/analytics/summary?${query(span, { format: 'csv' })}`, 'text/csv');
    const blob = await res.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `sori-analytics-${span.from}-${span.to}.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    if (err instanceof KeyNeeded) show('key', err.message);
    else show('error', err.message);
  } finally {
    button.disabled = false;
  }
}

// ---- wiring -------------------------------------------------------------------------------------

function renderPeriod() {
  for (const b of document.querySelectorAll('[data-days]')) {
    b.setAttribute('aria-pressed', String(Number(b.dataset.days) === state.days));
  }
}

for (const b of document.querySelectorAll('[data-days]')) {
  b.addEventListener('click', () => {
    state.days = Number(b.dataset.days);
    store.set('sori:dash:days', state.days);
    renderPeriod();
    load();
  });
}
$('#qoe-asset').addEventListener('change', (e) => loadAsset(e.target.value, period(state.days), generation));
// An episode's bar shows its playback quality (the picker is the keyboard's way there).
$('#chart-assets').addEventListener('click', (e) => {
  const id = e.target.closest?.('rect.bar, rect.hit')?.getAttribute('data-key');
  if (!id || !state.summary) return;
  $('#qoe-asset').value = id;
  loadAsset(id, period(state.days), generation);
  $('#h-qoe').scrollIntoView({ behavior: 'smooth', block: 'start' });
});
$('#csv').addEventListener('click', exportCsv);

const keyForm = $('#key-form');
function renderKey() {
  const set = Boolean(currentKey());
  keyForm.toggleAttribute('data-set', set);
  $('#key-input').placeholder = set ? 'Key in use' : 'Key';
  $('#key-forget').hidden = !set;
}
keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = $('#key-input').value.trim();
  if (!key) return;
  setKey(key);
  $('#key-input').value = '';
  renderKey();
  load();
});
$('#key-forget').addEventListener('click', () => {
  setKey('');
  renderKey();
  load();
});

renderKey();
renderPeriod();
const ready = load();

// ---- test hook ----------------------------------------------------------------------------------

window.soriDashboard = {
  /** Settles once the first load has drawn (or failed). */
  ready,
  get status() { return state.status; },
  get summary() { return state.summary; },
  get report() { return state.report; },
  get asset() { return state.asset; },
  get days() { return state.days; },
  /** Load again (e.g. after the test made more requests); settles once drawn. */
  reload: () => load(),
};
