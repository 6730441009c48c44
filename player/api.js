// The origin's JSON API, as the page uses it.

export class ApiError extends Error {}

// The page's inline script starts GET /v1/assets before the modules load; the first
// listing uses that response, later ones (after an upload) fetch again.
let earlyAssets = window.soriAssetsRequest || null;

async function getJSON(url) {
  let res;
  try {
    const early = url === '/v1/assets' ? earlyAssets : null;
    if (early) earlyAssets = null;
    res = (early && await early) || await fetch(url, { headers: { Accept: 'application/json' } });
  } catch {
    throw new ApiError('The server could not be reached. Check that `sori serve` is running.');
  }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) throw new ApiError(body?.error || `The server answered ${res.status} ${res.statusText}.`);
  return body;
}

/** Every asset, newest first. */
export async function listAssets() {
  const body = await getJSON('/v1/assets');
  const assets = Array.isArray(body?.assets) ? body.assets : [];
  return assets.sort((a, b) => String(b.created || '').localeCompare(String(a.created || '')));
}
