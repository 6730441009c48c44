// CMCD (CTA-5004) for the page's players: one session per playback.
//
// Two kinds of data reach the origin, both counted by its analytics (analytics/README.md):
//
// - CMCD v1 on every playlist and segment request, added by the player library itself
//   (`CMCD=` query: no custom header, so no CORS preflight and nothing a CDN must be told
//   to forward). The configs below turn it on in hls.js, dash.js and Shaka with the
//   session id and content id (= asset id) of the playback.
// - CMCD v2 event reports (CTA-5004-B, event mode) from this module's CmcdReporter: play
//   state changes of the media element (starting when play is asked, playing, rebuffering,
//   seeking, paused, ended, fatal error, quit), POSTed in batches to the origin's collector
//   (`POST /v1/cmcd`, one report per line, `text/cmcd`); the last ones on `pagehide` go by
//   navigator.sendBeacon, which the browser delivers after the page is gone. A player library
//   cannot see the page go away (or a fetch that never started), so startup time, exits
//   before start and rebuffering are measured here, where the element's events are.
//
// The v1 requests and the v2 reports of one playback carry the same `sid`: the origin joins
// them into one session.

export const COLLECTOR = '/v1/cmcd';
const BATCH_MS = 4000; // reports wait at most this long to go in one POST
const BATCH_MAX = 20; // ... or until this many are waiting
const TERMINAL = new Set(['e', 'f', 'q']); // ended, fatal error, quit: nothing comes after

/** A random UUID (version 4). crypto.randomUUID exists only in secure contexts; a page
 *  served over plain HTTP from a LAN address is not one, crypto.getRandomValues is. */
export function newSessionId() {
  if (globalThis.crypto?.randomUUID) {
    try { return crypto.randomUUID(); } catch { /* not a secure context */ }
  }
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- player library settings (CMCD v1, query mode) ------------------------------------------

/** hls.js `cmcd` config. Without `sessionId` hls.js uses its own (`hls.sessionId`): the page's
 *  early instance (index.html) is created that way, and the reporter adopts it. */
export function hlsCmcd(contentId, sessionId = undefined) {
  return { contentId, ...(sessionId ? { sessionId } : {}), useHeaders: false };
}

/** dash.js settings (`player.updateSettings`). */
export function dashCmcd(contentId, sessionId) {
  return { streaming: { cmcd: { enabled: true, sid: sessionId, cid: contentId, mode: 'query' } } };
}

/** Shaka Player configuration (`player.configure`). */
export function shakaCmcd(contentId, sessionId) {
  return { cmcd: { enabled: true, sessionId, contentId, useHeaders: false } };
}

// ---- CMCD v2 encoding (pure) ---------------------------------------------------------------

/** A CMCD string value: a structured-field string (quoted, `\` and `"` escaped). */
function sfString(s) {
  return `"${String(s).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** One report: `{key: value}` -> `key=value,...` in key order (CTA-5004: keys sorted);
 *  undefined and null dropped, `true` as the bare key, strings quoted, tokens (marked
 *  `{token: 'p'}`) bare, inner lists (`{list: [[n, 'a']]}`) as `(n;a ...)`. */
export function encodeReport(data) {
  const parts = [];
  for (const key of Object.keys(data).sort()) {
    const v = data[key];
    if (v === undefined || v === null || v === false) continue;
    if (v === true) parts.push(key);
    else if (typeof v === 'number') parts.push(`${key}=${Math.round(v)}`);
    else if (typeof v === 'string') parts.push(`${key}=${sfString(v)}`);
    else if (v.token) parts.push(`${key}=${v.token}`);
    else if (v.list) parts.push(`${key}=(${v.list.map(([n, t]) => (t ? `${Math.round(n)};${t}` : `${Math.round(n)}`)).join(' ')})`);
  }
  return parts.join(',');
}

// ---- the v2 event reporter -------------------------------------------------------------------

/**
 * Reports one playback's play states as CMCD v2 events.
 *
 *   const r = new CmcdReporter(video, { sid, cid, type: 'a', bitrate: () => bps, throughput: () => bps });
 *   r.starting();   // play was asked for (before the engine loads)
 *   ...             // the element's events do the rest
 *   r.end();        // the page plays something else: a quit unless it had ended
 *
 * `type`: CMCD object type of what is shown ('a' audio, 'v' video); `bitrate()` the encoded
 * bitrate of the current rendition, `throughput()` the engine's estimate (both bits/s, NaN
 * when unknown). `send(body)` may replace the network (tests).
 */
export class CmcdReporter {
  constructor(video, { sid, cid, type = 'a', bitrate = () => NaN, throughput = () => NaN,
    endpoint = COLLECTOR, askedAt = performance.now() } = {}) {
    this.video = video;
    this.sid = sid;
    this.cid = cid;
    this.type = type;
    // An engine may throw when asked too early (dash.js before it has a source): a report
    // goes without the figure, and playback is never disturbed.
    this.bitrate = () => { try { return bitrate(); } catch { return NaN; } };
    this.throughput = () => { try { return throughput(); } catch { return NaN; } };
    this.endpoint = endpoint;
    this.askedAt = askedAt; // when play was asked: the start of the startup delay
    this.state = null; // the last reported `sta`
    this.sn = 0;
    this.started = false; // has played at least once
    this.lastBitrate = NaN;
    this.queue = [];
    this.timer = 0;
    this.reports = []; // the lines made, the last few hundred (the tests read them)
    this._off = [];
    const on = (target, name, fn) => {
      target.addEventListener(name, fn);
      this._off.push(() => target.removeEventListener(name, fn));
    };
    // Play asked for by the element itself (its own controls, autoplay off in load()).
    on(video, 'play', () => {
      if (this.state) return;
      this.askedAt = performance.now();
      this.starting();
    });
    on(video, 'playing', () => this._playing());
    // waiting for data: a rebuffer once playing; while (or just after) seeking, part of the seek
    on(video, 'waiting', () => { if (this.started && !video.seeking && this.state !== 'k') this._report('r'); });
    on(video, 'seeking', () => { if (this.state) this._report('k'); });
    on(video, 'seeked', () => {
      if (!this.state || !this.started) return;
      if (video.paused) this._report('a');
      else if (video.readyState >= 3) this._playing();
    });
    on(video, 'pause', () => { if (this.started && !video.ended && !video.seeking) this._report('a'); });
    on(video, 'ended', () => this._report('e'));
    // The page goes away (closed, navigated, or a phone discarding a background tab): the
    // reports still waiting leave by beacon, and a playback that had not ended was quit.
    on(window, 'pagehide', () => {
      if (this.state && !TERMINAL.has(this.state)) this._report('q', {}, false);
      this.flush(true);
    });
    on(document, 'visibilitychange', () => { if (document.visibilityState === 'hidden') this.flush(true); });
  }

  /** Play was asked for: `sta=s` (the startup delay runs from `askedAt`). */
  starting() {
    // ts: when it was asked (the engine may have loaded its library since)
    if (!this.state) this._report('s', { ts: Date.now() - (performance.now() - this.askedAt) });
  }

  /** The engine failed for good. */
  fatal() {
    if (this.state && !TERMINAL.has(this.state)) this._report('f');
  }

  /** A rendition switch (`e=bc`), reported once playing, when the bitrate differs from the
   *  one last reported. */
  bitrateChanged() {
    if (this.started && !TERMINAL.has(this.state) && this.bitrate() !== this.lastBitrate) this._event('bc');
  }

  /** This playback is over (another asset or engine takes the element): a quit unless it
   *  ended; what waits is sent now. The element's events are no longer followed. */
  end() {
    if (this.state && !TERMINAL.has(this.state)) this._report('q', {}, false);
    this.flush();
    for (const off of this._off) off();
    this._off = [];
  }

  _playing() {
    if (!this.state || TERMINAL.has(this.state) || this.state === 'p') return;
    const first = !this.started;
    this.started = true;
    // msd (media start delay): once per session, from play asked to the first frame.
    this._report('p', first ? { msd: Math.max(0, performance.now() - this.askedAt) } : {});
  }

  _report(sta, extra = {}, flushTerminal = true) {
    if (TERMINAL.has(this.state)) return;
    this.state = sta;
    this._event('ps', { sta: { token: sta }, ...extra }, flushTerminal);
  }

  _event(e, extra = {}, flushTerminal = true) {
    const v = this.video;
    const br = this.bitrate();
    this.lastBitrate = br;
    // an engine's estimate before it has measured anything is its default: not sent
    const mtp = this.started ? this.throughput() : NaN;
    const data = {
      v: 2, e: { token: e }, ts: Date.now(), sid: this.sid, cid: this.cid, sn: this.sn++,
      br: Number.isFinite(br) && br > 0 ? { list: [[br / 1000, this.type]] } : undefined,
      // mtp rounded to 100 kbps, bl to 100 ms (CTA-5004)
      mtp: Number.isFinite(mtp) && mtp > 0 ? { list: [[Math.round(mtp / 1e5) * 100, this.type]] } : undefined,
      bl: this.started ? { list: [[Math.round(bufferAhead(v) * 10) * 100, this.type]] } : undefined,
      pt: Number.isFinite(v.currentTime) ? v.currentTime * 1000 : undefined,
      ...extra,
    };
    const line = encodeReport(data);
    this.reports.push(line);
    if (this.reports.length > 400) this.reports.splice(0, 200);
    this.queue.push(line);
    const terminal = TERMINAL.has(extra.sta?.token);
    if ((terminal && flushTerminal) || this.queue.length >= BATCH_MAX) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), BATCH_MS);
  }

  /** Send what waits: by fetch (keepalive: it outlives a page being left), or by beacon
   *  when the page is going away. */
  flush(beacon = false) {
    clearTimeout(this.timer);
    this.timer = 0;
    if (!this.queue.length) return;
    const body = `${this.queue.join('\n')}\n`;
    this.queue = [];
    send(this.endpoint, body, beacon);
  }
}

const CMCD_TYPE = 'text/cmcd';

function send(url, body, beacon) {
  if (beacon && navigator.sendBeacon) {
    try {
      if (navigator.sendBeacon(url, new Blob([body], { type: CMCD_TYPE }))) return;
    } catch { /* refused: fetch below */ }
  }
  try {
    fetch(url, { method: 'POST', body, keepalive: true, headers: { 'Content-Type': CMCD_TYPE } })
      .catch(() => { /* analytics never disturb playback */ });
  } catch { /* idem */ }
}

function bufferAhead(video) {
  const { buffered, currentTime } = video;
  for (let i = 0; i < buffered.length; i += 1) {
    if (buffered.start(i) <= currentTime + 0.1 && currentTime <= buffered.end(i)) return buffered.end(i) - currentTime;
  }
  return 0;
}
