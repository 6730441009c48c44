// The transcript panel under the stage: the asset's whole text, one line per cue, the one being
// spoken highlighted (and kept in view while it plays), a click or Enter on a line seeks there.
//
// The cues are player/captions.js's (transcript.vtt for a VOD asset, the live text track as it
// arrives for a stream), so the panel and the captions never disagree. Each line is a button
// (reachable with Tab, announced with its time); the list scrolls by itself only while the
// user is not scrolling it.

import { el, formatTime } from './util.js';

const USER_SCROLL_HOLD_MS = 4000; // after the user scrolls the list, it stays put this long

export class TranscriptPanel {
  /** `root` is the panel (`#transcript`); `captions` the cue source; `seek(t)` plays from t. */
  constructor(root, captions, seek) {
    this.root = root;
    this.list = root.querySelector('.transcript-list');
    this.count = root.querySelector('.transcript-count');
    this.captions = captions;
    this.seek = seek;
    this.items = [];
    this._active = null;
    this._userScrolledAt = -Infinity; // never: follow the spoken line from the start
    this._scrollingUntil = 0; // scroll events before this come from the panel itself

    captions.addEventListener('cues', () => this.render());
    captions.addEventListener('active', () => this._highlight());
    this.list.addEventListener('click', (e) => {
      const item = e.target.closest?.('[data-start]');
      if (item) this.seek(Number(item.dataset.start));
    });
    this.list.addEventListener('scroll', () => {
      if (performance.now() > this._scrollingUntil) this._userScrolledAt = performance.now();
    }, { passive: true });
    this.render();
  }

  render() {
    const cues = this.captions.cues;
    const live = this.captions.source === 'track';
    this.root.hidden = cues.length === 0;
    this.count.textContent = cues.length ? `${cues.length} ${cues.length === 1 ? 'line' : 'lines'}${live ? ' so far' : ''}` : '';
    // A live list only grows at its end: add the new lines, keep the ones drawn.
    const keep = live && this.items.length <= cues.length
      && this.items.every((node, i) => Number(node.dataset.start) === cues[i].start);
    if (!keep) {
      this.items = [];
      this.list.replaceChildren();
      this._active = null;
    }
    for (let i = this.items.length; i < cues.length; i += 1) {
      const cue = cues[i];
      const node = el('li', {},
        el('button', {
          type: 'button', class: 'transcript-line', dataset: { start: cue.start, index: i },
          'aria-label': `${formatTime(cue.start)}: ${cue.text}`,
        }, el('span', { class: 'transcript-time', 'aria-hidden': 'true' }, formatTime(cue.start)),
        el('span', { class: 'transcript-text' }, cue.text)));
      this.items.push(node.firstChild);
      this.list.append(node);
    }
    this._highlight();
  }

  _highlight() {
    const next = this.items[this.captions.current] ?? null;
    if (next === this._active) return;
    this._active?.removeAttribute('aria-current');
    this._active = next;
    if (!next) return;
    next.setAttribute('aria-current', 'true');
    if (performance.now() - this._userScrolledAt < USER_SCROLL_HOLD_MS) return;
    // Keep the spoken line in view inside the list, without moving the page itself.
    // (The list is positioned, so offsetTop is within it.)
    const list = this.list;
    const top = next.offsetTop;
    const bottom = top + next.offsetHeight;
    if (top < list.scrollTop || bottom > list.scrollTop + list.clientHeight) {
      this._scrollingUntil = performance.now() + 1000;
      list.scrollTo({ top: Math.max(0, top - list.clientHeight / 3), behavior: 'smooth' });
    }
  }
}
