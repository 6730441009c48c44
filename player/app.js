// sori's player page: the library, the stage, and the wiring between them.
//
// URL: /?asset=ID plays that asset, &dash=1 with dash.js instead of HLS.
// Test hook: window.soriPlayer (see the bottom of this file).
//
// Live assets (record `state: "live"`): played from their first word, with the producer's
// state from the stream's Server-Sent Events (`record.live.events`); when the stream ends the
// record turns into an ordinary VOD one (`state: "ready"`) at the same URLs. The library
// refreshes itself, every few seconds while it lists a live asset.
//
// Playback URLs come from the page's own endpoint, GET /playback/{id} (player/api.js): the
// record's URLs for a public asset, signed ones for a private asset when the user entered
// a key (the "Key" field; sent as a Bearer token on /v1/assets and /playback). A private
// live stream's events are followed with the token of its signed URL (`?token=`).

import {
  listAssets, getAsset, playbackUrls, withPlayback, tokenOf, currentKey, setKey,
} from './api.js';
import { renderGallery, renderGalleryError, markCurrent } from './gallery.js';
import { PlayerController } from './controller.js';
import { Controls } from './controls.js';
import { StatsOverlay } from './stats.js';
import { loadThumbnails } from './thumbnails.js';
import { setupUpload } from './upload.js';
import { Captions } from './captions.js';
import { TranscriptPanel } from './transcript.js';
import { ChapterMarks } from './chapters.js';
import { el, formatTime, formatDate, store } from './util.js';

const $ = (sel) => document.querySelector(sel);
const RESUME_MIN = 5; // seconds: closer to either end starts from the beginning
const LIBRARY_REFRESH_MS = 30000; // the library asks the origin again after this long
const LIBRARY_REFRESH_LIVE_MS = 4000; // ... or this long while it lists a live asset

const video = $('#video');
const stage = $('#stage');
const panel = $('#player-panel');
const galleryNode = $('#gallery');
const controller = new PlayerController(video);
const controls = new Controls(stage, controller);
const stats = new StatsOverlay($('#stats'), controller);
const help = $('#help');
// Timed text (issue 14): captions over the stage, the transcript panel, chapter marks.
const captions = new Captions(stage, controller);
const transcript = new TranscriptPanel($('#transcript'), captions, (t) => playFrom(t));
const chapters = new ChapterMarks($('.seek'), () => controls._duration());
controls.chapterAt = (t) => chapters.chapterAt(t);
controls.onCaptionsKey = () => {
  if (!captions.available) return false;
  controls.toast(captions.toggle() ? 'Captions on' : 'Captions off', 900);
  return true;
};
video.addEventListener('durationchange', () => chapters.render());

const params = new URLSearchParams(location.search);
const state = {
  assets: [],
  asset: null,
  dash: params.get('dash') === '1',
  playback: null, // {id, pb}: the playback URLs of the asset on the stage, once known
};

// ---- selecting and starting an asset ----------------------------------------------------

function resumeKey(id) {
  return `sori:resume:${id}`;
}

function savedPosition(asset) {
  if (asset.state === 'live') return 0; // a live stream plays from its first word
  const t = store.get(resumeKey(asset.id));
  const d = asset.duration || Infinity;
  return typeof t === 'number' && t > RESUME_MIN && t < d - RESUME_MIN ? t : 0;
}

function updateUrl() {
  const q = new URLSearchParams();
  if (state.asset) q.set('asset', state.asset.id);
  if (state.dash) q.set('dash', '1');
  const qs = q.toString();
  // replaceState is a same-document navigation for the browser (~10 ms at start-up): only
  // when the address changes.
  if (location.search === (qs ? `?${qs}` : '')) return;
  history.replaceState(null, '', qs ? `?${qs}` : location.pathname);
}

function renderDetails(asset) {
  $('#title').textContent = asset.title || asset.id;
  // A video's qualities are its video renditions; its audio rendition is shared by all.
  const n = (asset.renditions || []).filter((r) => asset.kind !== 'video' || r.type !== 'audio').length;
  const live = asset.state === 'live';
  const bits = [
    asset.kind === 'video' ? 'Video' : 'Audio',
    live ? 'Live' : null,
    !live && asset.duration ? formatTime(asset.duration) : null,
    n ? `${n} ${n === 1 ? 'quality' : 'qualities'}` : null,
    asset.created ? formatDate(asset.created) : null,
  ].filter(Boolean);
  $('#meta').replaceChildren(...bits.flatMap((b, i) => (i ? [el('span', { class: 'dot' }, '·'), b] : [b])));
  renderDownload(asset);
  $('#cover-title').textContent = asset.title || asset.id;
  $('#cover-sub').textContent = live ? 'Live audio'
    : asset.duration ? `Audio · ${formatTime(asset.duration)}` : 'Audio';
  let hash = 0;
  for (const ch of asset.id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  stage.style.setProperty('--hue', String(hash % 360));
  document.title = `${asset.title || asset.id} · sori`;
}

/** The download button: from the playback URLs (signed for a private asset) once known. */
function renderDownload(asset) {
  const dl = $('#download');
  const pb = state.playback?.id === asset.id ? state.playback.pb : null;
  const href = pb ? pb.download : asset.access === 'private' ? null : asset.download;
  dl.hidden = !href || asset.state === 'live'; // a live stream has no file yet
  if (href) dl.href = href;
}

/** The asset as the page plays it (player/api.js withPlayback), its playback URLs fetched
 *  (or reused while valid); also shown on the stage (download, poster) when still there. */
async function resolvePlayback(asset) {
  const pb = await playbackUrls(asset.id);
  if (state.asset?.id === asset.id) {
    const known = state.playback?.id === asset.id && state.playback.pb === pb;
    state.playback = { id: asset.id, pb };
    if (!known) {
      renderDownload(state.asset);
      const view = withPlayback(state.asset, pb);
      if (view.poster && !video.poster) video.poster = view.poster;
      loadTexts(view);
    }
  }
  return withPlayback(asset, pb);
}

function renderEngineToggle() {
  for (const b of document.querySelectorAll('[data-engine]')) {
    b.setAttribute('aria-pressed', String((b.dataset.engine === 'dash') === state.dash));
  }
}

/** Show `asset` on the stage; with `play`, start loading and playing it. */
function select(asset, { play = false } = {}) {
  if (state.asset?.id !== asset.id) {
    savePosition();
    controller.destroy();
    state.asset = asset;
    state.playback = null;
    // A private asset's poster needs the signed URL (resolvePlayback sets it).
    controls.reset(asset.access === 'private' ? { ...asset, poster: null } : asset);
    captions.reset(asset);
    chapters.reset();
    renderDetails(asset);
    markCurrent(galleryNode, asset.id);
    updateUrl();
    panel.hidden = false;
    watchLive(asset);
    // Ask for the playback URLs at once: the download link, and no wait on "play".
    resolvePlayback(asset).catch(() => { /* start() says why */ });
  }
  if (play) return start();
  return Promise.resolve();
}

async function start({ startAt, resume = true } = {}) {
  const asset = state.asset;
  if (!asset) return;
  controls.hideError();
  controls.setLoading(true);
  stage.classList.add('is-started');
  const from = startAt ?? (resume ? savedPosition(asset) : 0);
  let view;
  try {
    view = await resolvePlayback(asset);
  } catch (err) {
    if (state.asset !== asset) return;
    controller.destroy();
    controls.setLoading(false);
    const hint = currentKey() ? '' : ' If it is private, enter a key above.';
    controller.fail(`This asset cannot be played: ${err.message}${hint}`);
    return;
  }
  if (state.asset !== asset) return; // another asset was chosen meanwhile
  if (from > 0 && startAt === undefined) controls.toast(`Resuming at ${formatTime(from)}`);
  controls.setThumbnails(null);
  if (view.thumbnails) {
    loadThumbnails(view.thumbnails)
      .then((cues) => { if (state.asset === asset) controls.setThumbnails(cues); })
      .catch(() => { /* previews are optional */ });
  }
  await controller.load(view, { dash: state.dash, autoplay: true, startAt: from });
}

/** The asset's captions, transcript and chapters (their URLs signed like its media's). */
function loadTexts(view) {
  captions.load(view);
  chapters.load(view);
}

/** A line of the transcript was chosen: play from its start (starting the player if needed). */
function playFrom(t) {
  if (!state.asset) return;
  if (!controller.engine) {
    start({ startAt: t });
    return;
  }
  controls.seekTo(t);
  if (video.paused) video.play().catch(() => {});
}

function setEngine(dash) {
  if (state.dash === dash) return;
  state.dash = dash;
  renderEngineToggle();
  updateUrl();
  if (controller.engine) start({ startAt: video.currentTime });
}

// ---- resume positions -------------------------------------------------------------------

let lastSave = 0;
function savePosition() {
  if (!state.asset || !controller.engine || video.seeking || video.readyState < 1) return;
  lastSave = performance.now();
  store.set(resumeKey(state.asset.id), video.currentTime);
}
video.addEventListener('timeupdate', () => {
  if (performance.now() - lastSave >= 2000) savePosition();
});
// Right away after a seek or a pause, and when the page goes away, so a jump is never lost.
video.addEventListener('seeked', savePosition);
video.addEventListener('pause', () => { if (!video.ended) savePosition(); });
window.addEventListener('pagehide', savePosition);
video.addEventListener('ended', () => { if (state.asset) store.remove(resumeKey(state.asset.id)); });

// ---- live assets ------------------------------------------------------------------------

const live = {
  source: null, // the EventSource of the asset on the stage, while it is live
  events: [], // what it said: [{type, ...data}] (the test hook shows it)
  last: null, // the last event's data
};

function producerStatus(d) {
  const secs = Number.isFinite(d.media_seconds) ? `${d.media_seconds.toFixed(1)} s` : '';
  if (d.producer === 'speaking') return [secs ? `Speaking… ${secs}` : 'Speaking…', 'speaking'];
  if (d.producer === 'paused') return ['Paused (waiting for the voice)', 'paused'];
  if (d.producer === 'waiting') return ['Waiting for the first word…', 'paused'];
  if (d.producer === 'ended') return [secs ? `Ended · ${secs}` : 'Ended', 'ended'];
  return ['', ''];
}

function stopLive() {
  live.source?.close();
  live.source = null;
}

/** Follow the producer of `asset` (when it is live) through its Server-Sent Events. */
function watchLive(asset) {
  stopLive();
  live.events = [];
  live.last = null;
  if (asset.state !== 'live' || !asset.live?.events || !window.EventSource) return;
  if (asset.access === 'private') {
    // A private stream's events answer to the token of its signed URL (or a key, which an
    // EventSource cannot send).
    playbackUrls(asset.id).then((pb) => {
      const token = tokenOf(pb.hls);
      if (!token || state.asset?.id !== asset.id || live.source) return;
      const url = new URL(asset.live.events, location.href);
      url.searchParams.set('token', token);
      followLive(asset, url.href);
    }).catch(() => { /* the player says why it cannot play */ });
    return;
  }
  followLive(asset, asset.live.events);
}

function followLive(asset, url) {
  const source = new EventSource(url);
  live.source = source;
  const onEvent = (e) => {
    if (live.source !== source) return;
    let d;
    try { d = JSON.parse(e.data); } catch { return; }
    if (!d || typeof d !== 'object') return;
    live.events.push({ type: e.type, ...d });
    if (live.events.length > 200) live.events.splice(0, 100);
    live.last = d;
    // The producer has ended while the stream is sealed (`progress`, producer "ended"),
    // then `ended` once it is a VOD asset: the last one says how long it is.
    if (e.type === 'ended' || d.state === 'ready' || d.producer === 'ended') {
      liveEnded(asset.id, e.type === 'ended');
      return;
    }
    controls.setLiveStatus(...producerStatus(d));
  };
  for (const type of ['started', 'progress', 'ended', 'message']) source.addEventListener(type, onEvent);
  source.addEventListener('error', () => {
    // EventSource reconnects by itself; when it gives up (the stream is gone), the record
    // says what became of the asset.
    if (live.source === source && source.readyState === EventSource.CLOSED) {
      live.source = null;
      refreshAsset(asset.id);
    }
  });
}

/** The stream of asset `id` ended (its events said so, the player saw EXT-X-ENDLIST, or
 *  its record says so): the badge goes, and the asset's record (now a VOD one, with its
 *  duration) is read again. The player carries on: hls.js finds the end in the playlist
 *  itself. The events are followed a little longer for their `ended` (the final length). */
function liveEnded(id, fromEvents = false) {
  if (state.asset?.id !== id) return;
  const [text, kind] = producerStatus({ ...live.last, producer: 'ended' });
  if (fromEvents || !live.source) {
    stopLive();
  } else {
    const source = live.source;
    setTimeout(() => { if (live.source === source) stopLive(); }, 10000);
  }
  if (controls.live) controls.liveEnded(text);
  else if (fromEvents) controls.setLiveStatus(text, kind);
  refreshAsset(id);
}

let refreshing = null;
/** Read asset `id`'s record again until it is no longer live (a few tries), and show it. */
function refreshAsset(id) {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    for (let i = 0; i < 10; i += 1) {
      try {
        const fresh = await getAsset(id);
        if (fresh?.id === id) {
          adoptRecord(fresh);
          if (fresh.state !== 'live') break;
        }
      } catch { /* the library's refresh tries again later */ }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })().finally(() => { refreshing = null; });
  return refreshing;
}

/** A newer record of an asset the page lists: the library's card, and the stage when it is
 *  the asset there (without interrupting playback). */
function adoptRecord(fresh) {
  const i = state.assets.findIndex((a) => a.id === fresh.id);
  const old = i >= 0 ? state.assets[i] : null;
  if (i >= 0) state.assets[i] = fresh;
  if (old && recordKey(old) !== recordKey(fresh)) drawGallery();
  const current = state.asset;
  if (current?.id !== fresh.id) return;
  state.asset = fresh;
  if (controller.asset?.id === fresh.id) {
    const pb = state.playback?.id === fresh.id ? state.playback.pb : null;
    controller.asset = pb ? withPlayback(fresh, pb) : fresh;
  }
  renderDetails(fresh);
  controls.update(fresh);
  chapters.render();
  if (current.state === 'live' && fresh.state !== 'live') {
    liveEnded(fresh.id);
    // Sealed: its whole transcript and chapters are files now.
    const pb = state.playback?.id === fresh.id ? state.playback.pb : null;
    if (pb || fresh.access !== 'private') loadTexts(pb ? withPlayback(fresh, pb) : fresh);
  }
}

controller.addEventListener('liveended', () => { if (state.asset) liveEnded(state.asset.id); });

// ---- the library's refresh ----------------------------------------------------------------

const recordKey = (a) => [a.id, a.state, a.duration, a.title, a.poster, a.access].join('\u0000');
let refreshTimer = 0;
let refreshedAt = 0;

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const anyLive = state.assets.some((a) => a.state === 'live');
  refreshTimer = setTimeout(refreshLibrary, anyLive ? LIBRARY_REFRESH_LIVE_MS : LIBRARY_REFRESH_MS);
}

/** List the assets again; redraw the library only when something changed. */
async function refreshLibrary() {
  clearTimeout(refreshTimer);
  if (document.hidden) return; // again when the page is shown (below)
  refreshedAt = performance.now();
  try {
    const assets = await listAssets();
    const before = state.assets.map(recordKey).join('\n');
    if (assets.map(recordKey).join('\n') !== before) {
      state.assets = assets;
      renderCount();
      drawGallery();
      const cur = state.asset && assets.find((a) => a.id === state.asset.id);
      if (cur) adoptRecord(cur);
    }
  } catch { /* try again later */ }
  scheduleRefresh();
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden || !refreshedAt) return;
  const anyLive = state.assets.some((a) => a.state === 'live');
  if (performance.now() - refreshedAt >= (anyLive ? LIBRARY_REFRESH_LIVE_MS : LIBRARY_REFRESH_MS)) refreshLibrary();
  else scheduleRefresh();
});

// ---- page wiring ------------------------------------------------------------------------

stage.addEventListener('start', () => start());
stage.addEventListener('retry', () => start({ startAt: video.currentTime || undefined }));
for (const b of document.querySelectorAll('[data-engine]')) {
  b.addEventListener('click', () => setEngine(b.dataset.engine === 'dash'));
}
$('[data-action=stats]').addEventListener('click', () => stats.toggle());
$('#help-open').addEventListener('click', () => help.showModal());
help.addEventListener('click', (e) => { if (e.target === help) help.close(); });

document.addEventListener('keydown', (e) => {
  if (help.open) return;
  if (e.key === '?') { help.showModal(); e.preventDefault(); return; }
  if (e.key === 'i' && !e.ctrlKey && !e.metaKey && !e.altKey && !(e.target instanceof HTMLInputElement)) {
    stats.toggle();
    return;
  }
  if (!state.asset) return;
  if (controls.handleKey(e)) e.preventDefault();
});

async function loadLibrary(preferId = null) {
  galleryNode.setAttribute('aria-busy', 'true');
  try {
    state.assets = await listAssets();
  } catch (err) {
    renderGalleryError(galleryNode, err.message, loadLibrary);
    panel.hidden = true;
    return;
  } finally {
    galleryNode.removeAttribute('aria-busy');
  }
  renderCount();
  const wanted = state.assets.find((a) => a.id === (preferId || params.get('asset')));
  const first = wanted || state.assets.find((a) => a.state !== 'failed');
  if (first) select(first);
  else panel.hidden = true;
  // A link to one asset shows that asset first: the library below it is drawn once the
  // stream has started (or could not), so that its layout and posters do not compete with
  // the start of playback on the page's one main thread.
  const draw = () => {
    drawGallery();
    refreshedAt = performance.now();
    scheduleRefresh();
  };
  if (wanted && !preferId) startupSettled.then(draw);
  else draw();
}

function renderCount() {
  const count = state.assets.length;
  $('#library-count').textContent = count ? `${count} asset${count === 1 ? '' : 's'}` : '';
}

function drawGallery() {
  renderGallery(galleryNode, state.assets, (asset) => {
    select(asset, { play: true });
    panel.scrollIntoView({ behavior: 'smooth', block: 'start' });
  });
  if (state.asset) markCurrent(galleryNode, state.asset.id);
}

/** Settles when the stream the page started early for a linked asset has its first frames
 *  (or an error, or after 3 s), or at once when the page started none (index.html). */
function settled() {
  return new Promise((resolve) => {
    let over = false;
    const done = () => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      for (const ev of SETTLED_ON) video.removeEventListener(ev, done);
      // after the frame that shows the first picture (a tab in the background draws no
      // frames: the timer, throttled there, still runs)
      requestAnimationFrame(() => setTimeout(resolve));
      setTimeout(resolve, 100);
    };
    const timer = setTimeout(done, 3000);
    for (const ev of SETTLED_ON) video.addEventListener(ev, done);
    window.soriBoot?.started?.then((early) => { if (!early) done(); });
  });
}
const SETTLED_ON = ['playing', 'canplay', 'error'];
const startupSettled = params.get('asset') ? settled() : Promise.resolve();

// The tab's icon: an SVG icon is a whole SVG document to the renderer, so it comes after
// (index.html has an empty one until then).
startupSettled.then(() => {
  const link = document.querySelector('link[rel="icon"]')
    ?? document.head.appendChild(el('link', { rel: 'icon' }));
  link.type = 'image/svg+xml';
  link.href = '/player/favicon.svg';
});

// ---- the key ------------------------------------------------------------------------------

const keyForm = $('#key-form');
const keyInput = $('#key-input');
function renderKey() {
  const set = Boolean(currentKey());
  keyForm.toggleAttribute('data-set', set);
  keyInput.placeholder = set ? 'Key in use' : 'Key';
  $('#key-forget').hidden = !set;
}
/** Use `key` ('' forgets it): the library is listed again with it, and what is on the
 *  stage gets fresh playback URLs when next played. */
async function useKey(key) {
  setKey(key);
  keyInput.value = '';
  renderKey();
  const id = state.asset?.id;
  if (state.asset?.access === 'private' && !key) {
    controller.destroy();
    stopLive();
  }
  state.playback = null;
  await loadLibrary(id || null);
}
keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (key) useKey(key);
});
$('#key-forget').addEventListener('click', () => useKey(''));
renderKey();

renderEngineToggle();
const ready = loadLibrary();
setupUpload({
  button: $('#upload'),
  input: $('#upload-input'),
  status: $('#upload-status'),
  onDone: async (id) => {
    await loadLibrary(id);
    panel.scrollIntoView({ behavior: 'smooth', block: 'start' });
  },
});

// ---- test hook: a small, stable surface for the end-to-end tests --------------------------

window.soriPlayer = {
  ready,
  video,
  controller,
  get hls() { return controller.hls; },
  get dash() { return controller.dash; },
  get engine() { return controller.engine; },
  get fatalErrors() { return controller.fatalErrors; },
  get levelSwitches() { return controller.levelSwitches; },
  get asset() { return state.asset; },
  /** The live stream on the stage: is it live, and what its producer said. */
  get live() {
    return { live: controls.live, events: [...live.events], status: $('.live-status').textContent };
  },
  /** Enter (or with '' forget) a key, as the key field does; resolves once listed again. */
  useKey: (key) => useKey(key),
  /** List the assets again now (the page also does every few seconds). */
  refreshLibrary: () => refreshLibrary(),
  /** Play asset `id`: {dash: bool, resume: bool (default false: from the start)}. */
  async load(id, { dash = false, resume = false } = {}) {
    await ready;
    const asset = state.assets.find((a) => a.id === id);
    if (!asset) throw new Error(`no asset ${id}`);
    state.dash = dash;
    renderEngineToggle();
    await select(asset);
    updateUrl();
    await start({ resume, startAt: resume ? undefined : 0 });
  },
  /** Captions and transcript: {on, available, source, cues: [{start, end, text}], current,
   *  shown: the text over the stage}; chapters: [{start, end, title}]. */
  get captions() {
    return {
      on: captions.on, available: captions.available, source: captions.source,
      cues: captions.cues.map((c) => ({ ...c })), current: captions.current,
      shown: $('.captions').hidden ? '' : $('.captions').textContent,
    };
  },
  get chapters() { return chapters.chapters.map((c) => ({ ...c })); },
  setLevel: (n) => controller.setLevel(n),
  levels: () => controller.levels(),
  currentLevel: () => controller.currentLevel(),
};
