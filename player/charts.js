// Small SVG charts for the analytics dashboard (player/dashboard.js), no library.
//
// Each chart is drawn at the width its container has, in CSS pixels, so that its text stays
// the size of the page's text on a phone as on a desktop (a chart scaled down from a fixed
// viewBox would shrink its labels to nothing at 375 px). `mount()` redraws a chart when its
// container's width changes.
//
// What a chart shows can be read back from the DOM (the tests do, and so do screen
// readers): every bar is a `rect.bar` with `data-key`, `data-label` and `data-value`, and a
// <title>; the <svg> has role="img" and an aria-label that says what it shows.

const NS = 'http://www.w3.org/2000/svg';
let uid = 0;

/** An SVG element: svg('rect', {x: 1, class: 'bar'}, child, 'text'). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ---- drawing at the container's width ----------------------------------------------------

const drawn = new WeakMap(); // container -> {draw, width}
const observer = typeof ResizeObserver === 'function' ? new ResizeObserver((entries) => {
  for (const entry of entries) {
    const it = drawn.get(entry.target);
    const width = Math.floor(entry.contentRect.width);
    if (it && width > 0 && width !== it.width) paint(entry.target, it, width);
  }
}) : null;

function paint(container, it, width) {
  it.width = width;
  container.replaceChildren(it.draw(width));
}

/** Draw `draw(width) -> Node` into `container` now and whenever its width changes. */
export function mount(container, draw) {
  const it = { draw, width: 0 };
  drawn.set(container, it);
  paint(container, it, Math.max(240, Math.floor(container.clientWidth || 0)));
  observer?.observe(container);
}

// ---- scales and text -------------------------------------------------------------------------

/** Ticks from 0 to the first multiple of a round step (1, 2, 2.5 or 5 x 10^k; whole
 *  numbers when `integer`) at or above `max`: three to five intervals. */
export function ticks(max, integer = true) {
  const raw = Math.max(max, integer ? 1 : 1e-9) / 5;
  const k = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * k)
    .find((v) => v >= raw - 1e-12 && (!integer || Number.isInteger(v)));
  if (integer) step = Math.max(1, Math.round(step));
  const top = step * Math.max(1, Math.ceil(max / step - 1e-9));
  const out = [];
  for (let i = 0; i * step <= top + 1e-9; i += 1) out.push(Math.round(i * step * 1e6) / 1e6);
  return out;
}

/** Cut `text` to about `px` pixels of `size`-px text (an average glyph is ~0.56 em). */
export function fit(text, px, size = 13) {
  const max = Math.max(3, Math.floor(px / (size * 0.56)));
  const s = String(text);
  return s.length <= max ? s : `${s.slice(0, max - 1).trimEnd()}…`;
}

const plain = (v) => String(v);

function gradient(id, vertical = false) {
  return svg('defs', {}, svg('linearGradient', { id, x1: 0, y1: vertical ? 1 : 0, x2: vertical ? 0 : 1, y2: 0 },
    svg('stop', { offset: 0, 'stop-color': '#6d7cff' }),
    svg('stop', { offset: 1, 'stop-color': '#20c4b5' })));
}

function empty(width, height, message) {
  return svg('svg', { class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': message },
    svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' }, message));
}

// ---- columns: one value per day --------------------------------------------------------------

/**
 * Vertical bars, one per item in order: items [{key, label, value, title}]. `format(v)`
 * writes a value, `label` the x-axis text of an item (shown for as many items as fit).
 */
export function columns(width, { items, format = plain, height = 210, label = 'values', emptyText = 'Nothing yet' }) {
  if (!items.length) return empty(width, height, emptyText);
  const max = Math.max(0, ...items.map((d) => d.value));
  const axis = ticks(max);
  const top = axis[axis.length - 1] || 1;
  const yLabelW = Math.max(22, 8 + 7.2 * Math.max(...axis.map((t) => format(t).length)));
  const m = { l: yLabelW, r: 6, t: 20, b: 26 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const band = pw / items.length;
  const bw = Math.max(2, Math.min(38, band * 0.72));
  const y = (v) => m.t + ph - (v / top) * ph;
  const id = `g${++uid}`;
  const every = Math.max(1, Math.ceil(items.length / Math.max(1, Math.floor(pw / 52))));
  const showValues = band >= 26; // else only the highest bar says its value
  const total = items.reduce((a, d) => a + d.value, 0);
  const peak = items.reduce((best, d, i) => (d.value > items[best].value ? i : best), 0);
  const root = svg('svg', {
    class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `${label}: ${items.length} bars, ${format(total)} in all`,
  }, gradient(id, true));
  for (const t of axis) {
    root.append(svg('line', { class: 'grid', x1: m.l, x2: width - m.r, y1: y(t), y2: y(t) }),
      svg('text', { class: 'axis', x: m.l - 7, y: y(t) + 4, 'text-anchor': 'end' }, format(t)));
  }
  items.forEach((d, i) => {
    const cx = m.l + band * i + band / 2;
    const h = Math.max(0, y(0) - y(d.value));
    root.append(svg('rect', {
      class: 'bar', x: cx - bw / 2, y: y(0) - h, width: bw, height: h, rx: Math.min(4, bw / 3),
      fill: `url(#${id})`, 'data-key': d.key, 'data-label': d.label, 'data-value': d.value,
    }, svg('title', {}, d.title || `${d.label}: ${format(d.value)}`)));
    if (d.value > 0 && (showValues || i === peak)) {
      root.append(svg('text', { class: 'value', x: cx, y: y(0) - h - 5, 'text-anchor': 'middle' }, format(d.value)));
    }
    // the last item's label always, the others when there is room; none cut at the edges
    const last = i === items.length - 1;
    if ((i % every === 0 && (last || items.length - 1 - i >= every)) || last) {
      const half = (String(d.label).length * 6.6) / 2;
      const anchor = cx + half > width ? 'end' : cx - half < 0 ? 'start' : 'middle';
      const x = anchor === 'end' ? width : anchor === 'start' ? 0 : cx;
      root.append(svg('text', { class: 'axis', x, y: height - 8, 'text-anchor': anchor }, d.label));
    }
  });
  return root;
}

// ---- bars: a ranked list ---------------------------------------------------------------------

/**
 * Horizontal bars, largest first, for a top list: items [{key, label, value, sub}] (`sub`: a
 * second, muted text after the value). At most `limit` rows; the rest are counted in a
 * last line.
 */
export function bars(width, { items, format = plain, limit = 8, label = 'values', emptyText = 'Nothing yet' }) {
  if (!items.length) return empty(width, 90, emptyText);
  const sorted = [...items].sort((a, b) => b.value - a.value || String(a.label).localeCompare(String(b.label)));
  const shown = sorted.slice(0, limit);
  const rest = sorted.length - shown.length;
  const row = 44;
  const height = shown.length * row + (rest ? 26 : 0) + 4;
  const max = Math.max(...shown.map((d) => d.value)) || 1;
  const id = `g${++uid}`;
  const root = svg('svg', {
    class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `${label}: ${shown.map((d) => `${d.label} ${format(d.value)}`).join(', ')}`,
  }, gradient(id));
  shown.forEach((d, i) => {
    const y0 = i * row;
    const valueText = format(d.value);
    const valueW = 8 + 8 * valueText.length;
    const sub = d.sub ? ` ${d.sub}` : '';
    root.append(
      // the whole row, for a pointer (rect.hit: not a bar)
      svg('rect', { class: 'hit', x: 0, y: y0, width, height: row, fill: 'transparent', 'data-key': d.key ?? d.label }),
      svg('text', { class: 'label', x: 0, y: y0 + 16 }, fit(d.label, width - valueW - 8, 13.5)),
      svg('text', { class: 'value', x: width, y: y0 + 16, 'text-anchor': 'end' }, valueText,
        sub ? svg('tspan', { class: 'sub' }, sub) : null),
      svg('rect', { class: 'track', x: 0, y: y0 + 24, width, height: 9, rx: 4.5 }),
      svg('rect', {
        class: 'bar', x: 0, y: y0 + 24, width: Math.max(4, (d.value / max) * width), height: 9, rx: 4.5,
        fill: `url(#${id})`, 'data-key': d.key ?? d.label, 'data-label': d.label, 'data-value': d.value,
      }, svg('title', {}, `${d.label}: ${valueText}`)),
    );
  });
  if (rest) {
    root.append(svg('text', { class: 'more', x: 0, y: height - 8 }, `and ${rest} more`));
  }
  return root;
}

// ---- mix: shares of a whole --------------------------------------------------------------------

export const PALETTE = ['#6d7cff', '#20c4b5', '#f5a524', '#e5484d', '#a78bfa', '#7ee2b8', '#f472b6', '#94a3b8'];

/**
 * One 100 % bar split into the items' shares, and a legend row per item (swatch, label,
 * share, `format(value)`): items [{key, label, value}], largest first.
 */
export function mix(width, { items, format = plain, label = 'shares', emptyText = 'Nothing yet' }) {
  const parts = items.filter((d) => d.value > 0).sort((a, b) => b.value - a.value);
  if (!parts.length) return empty(width, 70, emptyText);
  const total = parts.reduce((a, d) => a + d.value, 0);
  const row = 26;
  const height = 30 + parts.length * row + 6;
  const id = `c${++uid}`;
  const root = svg('svg', {
    class: 'chart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `${label}: ${parts.map((d) => `${d.label} ${Math.round((100 * d.value) / total)}%`).join(', ')}`,
  }, svg('defs', {}, svg('clipPath', { id }, svg('rect', { x: 0, y: 0, width, height: 16, rx: 8 }))));
  const strip = svg('g', { 'clip-path': `url(#${id})` });
  let x = 0;
  parts.forEach((d, i) => {
    const w = (d.value / total) * width;
    const pct = (100 * d.value) / total;
    strip.append(svg('rect', {
      class: 'bar', x, y: 0, width: Math.max(0, w - (i < parts.length - 1 ? 2 : 0)), height: 16,
      fill: PALETTE[i % PALETTE.length], 'data-key': d.key ?? d.label, 'data-label': d.label, 'data-value': d.value,
    }, svg('title', {}, `${d.label}: ${pct.toFixed(0)}% (${format(d.value)})`)));
    x += w;
    const y0 = 30 + i * row;
    const right = `${pct < 1 && pct > 0 ? '<1' : pct.toFixed(0)}%  ${format(d.value)}`;
    root.append(
      svg('rect', { x: 0, y: y0 + 4, width: 12, height: 12, rx: 3, fill: PALETTE[i % PALETTE.length] }),
      svg('text', { class: 'label', x: 20, y: y0 + 14 }, fit(d.label, width - 20 - 8 * right.length, 13.5)),
      svg('text', { class: 'value', x: width, y: y0 + 14, 'text-anchor': 'end' }, right),
    );
  });
  root.insertBefore(strip, root.children[1] || null);
  return root;
}

// ---- meter: one figure against good / fair / poor ------------------------------------------------

/**
 * A horizontal meter for one figure: `value` on a scale to `max`, with bands at
 * `good` and `fair` (below good is good). `null` (no data) draws the empty scale.
 */
export function meter(width, { value, max, good, fair, label = 'figure' }) {
  const height = 26;
  const x = (v) => Math.min(width - 6, Math.max(6, (Math.min(v, max) / max) * (width - 12) + 6));
  const known = typeof value === 'number' && Number.isFinite(value);
  const verdict = !known ? 'none' : value <= good ? 'good' : value <= fair ? 'fair' : 'poor';
  return svg('svg', {
    class: 'chart-svg meter', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': known ? `${label}: ${verdict}` : `${label}: no data`, 'data-verdict': verdict,
  },
  svg('rect', { class: 'band good', x: 0, y: 10, width: x(good), height: 6, rx: 3 }),
  svg('rect', { class: 'band fair', x: x(good), y: 10, width: x(fair) - x(good), height: 6 }),
  svg('rect', { class: 'band poor', x: x(fair), y: 10, width: width - x(fair), height: 6, rx: 3 }),
  known ? svg('circle', { class: `mark ${verdict}`, cx: x(value), cy: 13, r: 7 }) : null);
}
