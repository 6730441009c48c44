// Seek-bar previews from a WebVTT thumbnail track: cues whose text is `sprite.jpg#xywh=x,y,w,h`.

function parseTimestamp(text) {
  const parts = text.trim().split(':').map(Number);
  if (parts.some(Number.isNaN)) return NaN;
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

/** Parse the VTT text into [{start, end, url, x, y, w, h}], URLs resolved against `base`. */
export function parseThumbnailVtt(text, base) {
  const cues = [];
  const blocks = text.replace(/\r\n?/g, '\n').split(/\n{2,}/);
  for (const block of blocks) {
    const lines = block.split('\n').filter(Boolean);
    const timing = lines.findIndex((l) => l.includes('-->'));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [a, b] = lines[timing].split('-->');
    const start = parseTimestamp(a);
    const end = parseTimestamp(b.trim().split(/\s+/)[0]);
    const ref = lines[timing + 1].trim();
    const [path, fragment = ''] = ref.split('#');
    const m = /xywh=(\d+),(\d+),(\d+),(\d+)/.exec(fragment);
    if (Number.isNaN(start) || Number.isNaN(end)) continue;
    const cue = { start, end, url: new URL(path, base).href };
    if (m) Object.assign(cue, { x: +m[1], y: +m[2], w: +m[3], h: +m[4] });
    cues.push(cue);
  }
  return cues;
}

export async function loadThumbnails(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`thumbnails: ${res.status}`);
  const base = new URL(url, location.href).href;
  return parseThumbnailVtt(await res.text(), base);
}

export function cueAt(cues, time) {
  if (!cues?.length) return null;
  let lo = 0, hi = cues.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (time < cues[mid].start) hi = mid - 1;
    else if (time >= cues[mid].end) lo = mid + 1;
    else return cues[mid];
  }
  return time >= cues[cues.length - 1].start ? cues[cues.length - 1] : null;
}
