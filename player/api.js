// The origin's JSON API, as the page uses it.

export class ApiError extends Error {}

async function getJSON(url) {
  let res;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' } });
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
