// sori's player page: the library, the stage, and the wiring between them.
//
// URL: /?asset=ID plays that asset, &dash=1 with dash.js instead of HLS.
// Test hook: window.soriPlayer (see the bottom of this file).

import { listAssets } from './api.js';
import { renderGallery, renderGalleryError, markCurrent } from './gallery.js';
import { PlayerController } from './controller.js';
import { Controls } from './controls.js';
import { StatsOverlay } from './stats.js';
import { loadThumbnails } from './thumbnails.js';
import { setupUpload } from './upload.js';
import { el, formatTime, formatDate, store } from './util.js';

const $ = (sel) => document.querySelector(sel);
const RESUME_MIN = 5; // seconds: closer to either end starts from the beginning

const video = $('#video');
const stage = $('#stage');
const panel = $('#player-panel');
const galleryNode = $('#gallery');
const controller = new PlayerController(video);
const controls = new Controls(stage, controller);
const stats = new StatsOverlay($('#stats'), controller);
const help = $('#help');

const params = new URLSearchParams(location.search);
const state = {
  assets: [],
  asset: null,
  dash: params.get('dash') === '1',
};

// ---- selecting and starting an asset ----------------------------------------------------

function resumeKey(id) {
  return `sori:resume:${id}`;
}

function savedPosition(asset) {
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
  const bits = [
    asset.kind === 'video' ? 'Video' : 'Audio',
    asset.duration ? formatTime(asset.duration) : null,
    n ? `${n} ${n === 1 ? 'quality' : 'qualities'}` : null,
    asset.created ? formatDate(asset.created) : null,
  ].filter(Boolean);
  $('#meta').replaceChildren(...bits.flatMap((b, i) => (i ? [el('span', { class: 'dot' }, '·'), b] : [b])));
  const dl = $('#download');
  dl.hidden = !asset.download;
  if (asset.download) dl.href = asset.download;
  $('#cover-title').textContent = asset.title || asset.id;
  $('#cover-sub').textContent = asset.duration ? `Audio · ${formatTime(asset.duration)}` : 'Audio';
  let hash = 0;
  for (const ch of asset.id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  stage.style.setProperty('--hue', String(hash % 360));
  document.title = `${asset.title || asset.id} · sori`;
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
    controls.reset(asset);
    renderDetails(asset);
    markCurrent(galleryNode, asset.id);
    updateUrl();
    panel.hidden = false;
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
  if (from > 0 && startAt === undefined) controls.toast(`Resuming at ${formatTime(from)}`);
  controls.setThumbnails(null);
  if (asset.thumbnails) {
    loadThumbnails(asset.thumbnails)
      .then((cues) => { if (state.asset === asset) controls.setThumbnails(cues); })
      .catch(() => { /* previews are optional */ });
  }
  await controller.load(asset, { dash: state.dash, autoplay: true, startAt: from });
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
  const count = state.assets.length;
  $('#library-count').textContent = count ? `${count} asset${count === 1 ? '' : 's'}` : '';
  const wanted = state.assets.find((a) => a.id === (preferId || params.get('asset')));
  const first = wanted || state.assets.find((a) => a.state !== 'failed');
  if (first) select(first);
  else panel.hidden = true;
  // A link to one asset shows that asset first: the library below it is drawn once the
  // stream has started (or could not), so that its layout and posters do not compete with
  // the start of playback on the page's one main thread.
  const draw = () => {
    renderGallery(galleryNode, state.assets, (asset) => {
      select(asset, { play: true });
      panel.scrollIntoView({ behavior: 'smooth', block: 'start' });
    });
    if (state.asset) markCurrent(galleryNode, state.asset.id);
  };
  if (wanted && !preferId) startupSettled.then(draw);
  else draw();
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
  setLevel: (n) => controller.setLevel(n),
  levels: () => controller.levels(),
  currentLevel: () => controller.currentLevel(),
};
