// Captions: the asset's timed text, shown over the stage (a toggle, remembered), and the cue
// list the transcript panel (player/transcript.js) reads.
//
// Where the cues come from, the same way for every engine (hls.js, the browser's own HLS,
// dash.js):
// - a VOD asset: its whole transcript, `record.transcript` (transcript.vtt), fetched and
//   parsed here. The engines' own text tracks (the HLS SUBTITLES rendition, the DASH text
//   AdaptationSet) carry the same cues, but an engine loads them only near the playhead,
//   and the panel needs the whole text from the start;
// - a live stream (no transcript.vtt until it is sealed): the cues the engine adds to its
//   text track on the <video> element as it loads the live subtitles playlist (hls.js's
//   subtitleTracks, dash.js's text track, Safari's own), gathered as they arrive.
// The page draws the captions itself (the element `.captions`) rather than letting the browser
// render the track: an audio asset's <video> is invisible behind its cover, and one renderer
// looks the same under every engine. Engine tracks are kept `hidden` (loaded, not drawn).
//
// Events (EventTarget): 'cues' (the list changed: loaded, or a live cue arrived), 'active'
// (the cue being spoken changed), 'toggle' (captions turned on or off).

import { store } from './util.js';

const PREF = 'sori:captions'; // localStorage: true when the user turned captions on
const TEXT_KINDS = new Set(['subtitles', 'captions']);

/** "01:02:03.500" or "02:03.500" -> seconds (NaN when malformed). */
export function parseTimestamp(text) {
  const m = /^(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})$/.exec(text.trim());
  if (!m) return NaN;
  return (Number(m[1] || 0) * 3600) + Number(m[2]) * 60 + Number(m[3]) + Number(m[4].padEnd(3, '0')) / 1000;
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', nbsp: '\u00a0', lrm: '\u200e', rlm: '\u200f', quot: '"', apos: "'" };

/** A cue's payload as plain text: WebVTT tags (<v Name>, <c.x>, <b>, <i>, timestamps) dropped,
 *  character references decoded. The result goes into textContent, never into HTML. */
export function cueText(payload) {
  return payload
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, name) => {
      if (name[0] === '#') {
        const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
      }
      return ENTITIES[name.toLowerCase()] ?? all;
    })
    .trim();
}

/** WebVTT text -> [{start, end, text, id}] in file order (blocks without a timing line, NOTE,
 *  STYLE and REGION blocks are skipped). */
export function parseVtt(text) {
  const cues = [];
  const blocks = String(text).replace(/^\ufeff/, '').replace(/\r\n?/g, '\n').split(/\n{2,}/);
  for (const block of blocks) {
    const lines = block.split('\n');
    const timing = lines.findIndex((l) => l.includes('-->'));
    if (timing < 0 || /^(NOTE|STYLE|REGION|WEBVTT)\b/.test(lines[0])) continue;
    const [a, b = ''] = lines[timing].split('-->');
    const start = parseTimestamp(a);
    const end = parseTimestamp(b.trim().split(/\s+/)[0] || '');
    if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) continue;
    const body = cueText(lines.slice(timing + 1).join('\n'));
    if (!body) continue;
    cues.push({ start, end, text: body, id: timing > 0 ? lines[0].trim() : '' });
  }
  return cues;
}

/** Index of the cue being spoken at `t` in `cues` (sorted by start), or -1. The last cue that
 *  started at or before `t` and has not ended. */
export function activeIndex(cues, t) {
  let lo = 0;
  let hi = cues.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cues[mid].start <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found >= 0 && t < cues[found].end ? found : -1;
}

export class Captions extends EventTarget {
  /** `stage` holds the overlay (`.captions`) and the toggle (`[data-action=captions]`). */
  constructor(stage, controller) {
    super();
    this.stage = stage;
    this.controller = controller;
    this.video = controller.video;
    this.overlay = stage.querySelector('.captions');
    this.button = stage.querySelector('[data-action=captions]');
    this.cues = [];
    this.source = 'none'; // 'file' (transcript.vtt) | 'track' (the engine's live text track) | 'none'
    this.current = -1;
    this.on = store.get(PREF) === true;
    this._asset = null;
    this._load = 0; // generation: a late fetch for a previous asset is dropped
    this._seen = new Map(); // live cues gathered already: "start|text" -> the cue
    this._hasTrack = false; // the media element has a subtitles track (live source)
    this._frame = 0;

    this.button.addEventListener('click', () => this.toggle());
    // timeupdate comes every 250 ms in Chromium: while playing, every frame instead, so a
    // caption changes with the word (a binary search per frame).
    this.video.addEventListener('timeupdate', () => this._tick());
    this.video.addEventListener('playing', () => this._frames());
    this.video.addEventListener('seeked', () => this._tick());
    this.video.textTracks.addEventListener?.('addtrack', () => this._adoptTracks());
    this.video.textTracks.addEventListener?.('change', () => this._adoptTracks());
    controller.addEventListener('engine', () => this._engineStarted());
    this._render();
  }

  /** A new asset on the stage: no cues until load(). */
  reset(asset) {
    this._asset = asset;
    this._load += 1;
    this.cues = [];
    this._seen.clear();
    this._hasTrack = false;
    this.source = 'none';
    this.current = -1;
    this._render();
    this._emit('cues');
  }

  /** Load the cues of `view` (the asset with its playback URLs): its transcript file, or for a
   *  live stream the engine's text track. */
  async load(view) {
    const generation = ++this._load;
    this._asset = view;
    if (view.transcript) {
      let cues = null;
      try {
        const res = await fetch(view.transcript);
        if (res.ok) cues = parseVtt(await res.text());
      } catch { /* captions are optional: the stream plays without them */ }
      if (generation !== this._load) return;
      if (cues) {
        this.source = 'file';
        this.cues = cues.sort((x, y) => x.start - y.start || x.end - y.end);
        this._seen.clear();
        this.current = -1;
        this._render();
        this._emit('cues');
        this._tick();
        return;
      }
    }
    if (view.state === 'live' && this.source !== 'track') {
      this.source = 'track';
      this._render();
      this._pickEngineTrack();
      this._adoptTracks();
    }
  }

  /** Whether the asset on the stage has (or, live, may get) captions. */
  get available() {
    if (this.source === 'file') return this.cues.length > 0;
    return this.source === 'track' && (this._hasTrack || this.cues.length > 0);
  }

  toggle(on = !this.on) {
    this.on = Boolean(on);
    store.set(PREF, this.on);
    this._render();
    this._emit('toggle');
    return this.on;
  }

  // ---- the live source: the engine's text track --------------------------------------

  _engineStarted() {
    const hls = this.controller.hls;
    const Hls = window.Hls;
    if (hls && Hls) {
      // Loaded and selected, but not drawn by the browser: the overlay draws them.
      hls.subtitleDisplay = false;
      hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => this._pickEngineTrack());
      hls.on(Hls.Events.MANIFEST_PARSED, () => this._pickEngineTrack());
    }
    const dash = this.controller.dash;
    if (dash && window.dashjs) {
      const E = window.dashjs.MediaPlayer.events;
      dash.on(E.TEXT_TRACKS_ADDED, () => { this._pickEngineTrack(); this._adoptTracks(); });
    }
    this._pickEngineTrack();
    this._adoptTracks();
  }

  /** A live stream: have the engine load its subtitles track (the first one). */
  _pickEngineTrack() {
    if (this.source !== 'track') return;
    const hls = this.controller.hls;
    if (hls && hls.subtitleTracks?.length && hls.subtitleTrack < 0) hls.subtitleTrack = 0;
    const dash = this.controller.dash;
    if (dash) {
      try { dash.enableText(true); dash.setTextTrack(0); } catch { /* no text track (yet) */ }
    }
  }

  /** Keep every text track of the media element loaded but undrawn ('hidden'): the overlay
   *  draws them (only the live source reads them). */
  _adoptTracks() {
    let has = false;
    for (const track of this.video.textTracks) {
      if (!TEXT_KINDS.has(track.kind)) continue;
      has = true;
      if (track.mode === 'showing') track.mode = 'hidden';
    }
    if (has !== this._hasTrack) {
      this._hasTrack = has;
      this._render();
    }
    if (this.source === 'track') this._gather();
  }

  /** New cues of the live text track, into the list. */
  _gather() {
    let added = false;
    for (const track of this.video.textTracks) {
      if (!TEXT_KINDS.has(track.kind) || track.mode === 'disabled' || !track.cues) continue;
      for (const cue of track.cues) {
        const text = cueText(cue.text ?? '');
        if (!text) continue;
        // A cue repeats in every segment it overlaps; one whose end was not known yet when
        // an early segment was written (a silence fill inside it) comes again, longer.
        const key = `${cue.startTime.toFixed(3)}|${text}`;
        const known = this._seen.get(key);
        if (known) {
          if (cue.endTime > known.end + 0.0005) { known.end = cue.endTime; added = true; }
          continue;
        }
        const item = { start: cue.startTime, end: cue.endTime, text, id: cue.id || '' };
        this._seen.set(key, item);
        this.cues.push(item);
        added = true;
      }
    }
    if (added) {
      this.cues.sort((x, y) => x.start - y.start || x.end - y.end);
      this.current = -2; // indices moved: _tick finds the active cue again
      this._render();
      this._emit('cues');
    }
  }

  // ---- drawing ------------------------------------------------------------------------

  _frames() {
    if (this._frame) return;
    const step = () => {
      this._tick();
      this._frame = this.video.paused || this.video.ended ? 0 : requestAnimationFrame(step);
    };
    this._frame = requestAnimationFrame(step);
  }

  _tick() {
    if (this.source === 'track') this._gather();
    const i = activeIndex(this.cues, this.video.currentTime);
    if (i === this.current) return;
    this.current = i;
    this._renderCue();
    this._emit('active');
  }

  _render() {
    const available = this.available;
    this.button.hidden = !available;
    this.button.setAttribute('aria-pressed', String(this.on));
    this.button.title = this.on ? 'Captions off (c)' : 'Captions on (c)';
    this.stage.classList.toggle('has-captions', available && this.on);
    this._renderCue();
  }

  _renderCue() {
    const cue = this.on ? this.cues[this.current] : null;
    const text = cue ? cue.text : '';
    if (this.overlay.dataset.text === text) return;
    this.overlay.dataset.text = text;
    const lines = text ? text.split('\n').map((line) => {
      const span = document.createElement('span');
      span.textContent = line;
      return span;
    }) : [];
    this.overlay.replaceChildren(...lines);
    this.overlay.hidden = !text;
  }

  _emit(name) {
    this.dispatchEvent(new Event(name));
  }
}
