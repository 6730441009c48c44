// Chapter marks on the seek bar, from the asset's chapters.json (`record.chapters`): the JSON
// form Apple's players read through EXT-X-SESSION-DATA DATA-ID="com.apple.hls.chapters", an
// array of {"chapter", "start-time", "duration"?, "titles": [{"language", "title"}]}.
//
// A mark is a thin tick where a chapter starts (the first chapter, at 0, has none); the seek
// bar's hover preview and its aria-valuetext name the chapter under the pointer or playhead
// (player/controls.js asks chapterAt()). Marks take no pointer events: the range input under
// them keeps every click and drag.

import { el, formatTime } from './util.js';

/** chapters.json -> [{start, end, title}] sorted by start (entries without a start dropped);
 *  `end` is the next chapter's start, or start + duration, or `duration` for the last. */
export function parseChapters(json, duration = 0) {
  if (!Array.isArray(json)) return [];
  const list = json
    .filter((c) => c && typeof c === 'object' && Number.isFinite(c['start-time']) && c['start-time'] >= 0)
    .map((c, i) => {
      const titles = Array.isArray(c.titles) ? c.titles : [];
      const title = titles.find((t) => t && typeof t.title === 'string')?.title || `Chapter ${c.chapter ?? i + 1}`;
      const own = Number.isFinite(c.duration) && c.duration > 0 ? c['start-time'] + c.duration : NaN;
      return { start: c['start-time'], end: own, title };
    })
    .sort((a, b) => a.start - b.start);
  list.forEach((c, i) => {
    const next = list[i + 1]?.start;
    if (!Number.isFinite(c.end)) c.end = next ?? (duration > c.start ? duration : Infinity);
  });
  return list;
}

export class ChapterMarks {
  /** `seek` is the seek bar's container (`.seek`); `duration()` the length the bar spans. */
  constructor(seek, duration) {
    this.layer = seek.querySelector('.chapter-marks');
    this.duration = duration;
    this.chapters = [];
    this._load = 0;
  }

  reset() {
    this._load += 1;
    this.chapters = [];
    this.render();
  }

  /** Fetch and draw the chapters of `view` (the asset with its playback URLs), if it has any. */
  async load(view) {
    const generation = ++this._load;
    let chapters = [];
    if (view.chapters) {
      try {
        const res = await fetch(view.chapters);
        if (res.ok) chapters = parseChapters(await res.json(), view.duration || 0);
      } catch { /* chapters are optional */ }
    }
    if (generation !== this._load) return;
    this.chapters = chapters;
    this.render();
  }

  /** The chapter playing at `t`, or null. */
  chapterAt(t) {
    let found = null;
    for (const c of this.chapters) {
      if (c.start <= t) found = c; else break;
    }
    return found && t < found.end ? found : null;
  }

  /** Draw (or move, when the duration became known) the marks. */
  render() {
    const d = this.duration();
    const marks = [];
    if (d > 0) {
      for (const c of this.chapters) {
        if (c.start <= 0 || c.start >= d) continue;
        marks.push(el('span', {
          class: 'chapter-mark', title: `${c.title} (${formatTime(c.start)})`,
          dataset: { start: c.start, title: c.title }, style: `left: ${(100 * c.start) / d}%`,
        }));
      }
    }
    this.layer.replaceChildren(...marks);
    this.layer.hidden = marks.length === 0;
  }
}
