// The origin's JSON API, as the page uses it.

export class ApiError extends Error {}

// The page's inline script starts GET /v1/assets (and reads its body) before the modules
// load; the first listing uses that, later ones (after an upload) fetch again.
let earlyAssets = window.soriBoot?.assets || null;

async function fetchJSON(url) {
  let res;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch {
    return null;
  }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return { ok: res.ok, status: res.status, statusText: res.statusText, body };
}

async function getJSON(url) {
  const early = url === '/v1/assets' ? earlyAssets : null;
  if (early) earlyAssets = null;
  const res = (early && await early) || await fetchJSON(url);
  if (!res) throw new ApiError('The server could not be reached. Check that `sori serve` is running.');
  if (!res.ok) throw new ApiError(res.body?.error || `The server answered ${res.status} ${res.statusText}.`);
  return res.body;
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
