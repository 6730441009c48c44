// The origin's JSON API, as the page uses it.
//
// The key: a user may type an API key into the page (the "Key" field). It is kept in
// sessionStorage (gone with the tab) and sent as `Authorization: Bearer KEY` on the page's
// reads of /v1/assets and /playback, so a user holding a key sees and plays private assets.
//
// Playback URLs come from `GET /playback/{id}` (origin/access/routes.py), never from the
// record's own hls/dash: for a public asset it answers the record's URLs, for a private
// one signed URLs (a token in the path, see signing/urls.py). A deployment can replace
// that endpoint with its own (same JSON: {"hls", "dash", "download"}, optionally
// "expires_at" in Unix seconds).

export class ApiError extends Error {}

const KEY_STORE = 'sori:key';

/** The key typed into the page, or '' (sessionStorage: this tab only). */
export function currentKey() {
  try { return sessionStorage.getItem(KEY_STORE) || ''; } catch { return ''; }
}

/** Keep `key` for this tab ('' forgets it); signed URLs fetched with the old one go too. */
export function setKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch { /* storage disabled: the key lives as long as this page */ }
  memoryKey = key;
  playbacks.clear();
  earlyAssets = null;
  earlyPlayback = null;
}
let memoryKey = null;

function keyHeaders() {
  const key = memoryKey ?? currentKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The page's inline script starts GET /v1/assets (and GET /playback/{id} for a linked
// asset) before the modules load; the first listing uses that, later ones fetch again.
let earlyAssets = window.soriBoot?.assets || null;
let earlyPlayback = window.soriBoot?.playback ? { id: window.soriBoot.id, res: window.soriBoot.playback } : null;

async function fetchJSON(url) {
  let res;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json', ...keyHeaders() } });
  } catch {
    return null;
  }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return { ok: res.ok, status: res.status, statusText: res.statusText, body };
}

function unwrap(res) {
  if (!res) throw new ApiError('The server could not be reached. Check that `sori serve` is running.');
  if (!res.ok) throw new ApiError(res.body?.error || `The server answered ${res.status} ${res.statusText}.`);
  return res.body;
}

async function getJSON(url) {
  const early = url === '/v1/assets' ? earlyAssets : null;
  if (early) earlyAssets = null;
  return unwrap((early && await early) || await fetchJSON(url));
}

/** Every asset, newest first. */
export async function listAssets() {
  const body = await getJSON('/v1/assets');
  const assets = Array.isArray(body?.assets) ? body.assets : [];
  // RFC 3339 times in UTC sort as plain strings (no locale collation to set up).
  const created = (a) => String(a.created || '');
  return assets.sort((a, b) => (created(a) < created(b) ? 1 : created(a) > created(b) ? -1 : 0));
}

/** One asset's record (fresh, e.g. once a live stream has ended). */
export async function getAsset(id) {
  return getJSON(`/v1/assets/${encodeURIComponent(id)}`);
}

const REFRESH_BEFORE_S = 60; // signed URLs this close to their expiry are asked for again
const playbacks = new Map(); // id -> {at, promise}

function fresh(pb) {
  return !Number.isFinite(pb?.expires_at) || pb.expires_at - Date.now() / 1000 > REFRESH_BEFORE_S;
}

/** The URLs to play asset `id` with: {hls, dash, download[, expires_at]} from
 *  GET /playback/{id}; kept while they are valid. */
export async function playbackUrls(id) {
  const early = earlyPlayback?.id === id ? earlyPlayback.res : null;
  if (early) earlyPlayback = null;
  const cached = playbacks.get(id);
  if (cached && !early) {
    const pb = await cached.catch(() => null);
    if (pb && fresh(pb)) return pb;
    if (playbacks.get(id) === cached) playbacks.delete(id);
  }
  const promise = (async () => unwrap((early && await early) || await fetchJSON(`/playback/${encodeURIComponent(id)}`)))();
  playbacks.set(id, promise);
  promise.catch(() => { if (playbacks.get(id) === promise) playbacks.delete(id); });
  const pb = await promise;
  return fresh(pb) ? pb : unwrap(await fetchJSON(`/playback/${encodeURIComponent(id)}`));
}

/** The token of a signed playback URL (`.../assets/{id}/~TOKEN/...`), or null. */
export function tokenOf(url) {
  const m = /\/assets\/[^/]+\/~([^/?#]+)\//.exec(String(url || ''));
  return m ? m[1] : null;
}

/** `asset` as the page plays it: its record with the playback URLs, and the URLs of its
 *  other objects (poster, thumbnails, transcript, chapters) moved under the signed directory when signed. */
export function withPlayback(asset, pb) {
  const view = { ...asset, hls: pb.hls, dash: pb.dash, download: pb.download };
  const dir = (url) => String(url).slice(0, String(url).lastIndexOf('/') + 1);
  const signed = tokenOf(pb.hls) && asset.hls;
  for (const k of ['poster', 'thumbnails', 'transcript', 'transcript_text', 'chapters']) {
    // The endpoint's own when it gives them; else the record's, under the signed directory.
    if (typeof pb[k] === 'string') view[k] = pb[k];
    else if (signed && typeof asset[k] === 'string' && asset[k].startsWith(dir(asset.hls))) {
      view[k] = dir(pb.hls) + asset[k].slice(dir(asset.hls).length);
    }
  }
  return view;
}
