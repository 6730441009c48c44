// "Stats for nerds": what the engine is doing, refreshed twice a second while shown.

import { el, formatBitrate, formatTime } from './util.js';

export class StatsOverlay {
  constructor(node, controller) {
    this.node = node;
    this.controller = controller;
    this._timer = 0;
    this.node.append(
      el('div', { class: 'stats-head' }, el('strong', {}, 'Stats'),
        el('button', { type: 'button', class: 'stats-close', 'aria-label': 'Close stats', onclick: () => this.hide() }, '×')),
      this.table = el('dl', {}));
  }

  get visible() {
    return !this.node.hidden;
  }

  toggle() {
    if (this.visible) this.hide(); else this.show();
  }

  show() {
    this.node.hidden = false;
    this.render();
    clearInterval(this._timer);
    this._timer = setInterval(() => this.render(), 500);
  }

  hide() {
    this.node.hidden = true;
    clearInterval(this._timer);
  }

  rows() {
    const c = this.controller;
    const v = c.video;
    const levels = c.levels();
    const cur = levels[c.currentLevel()];
    const q = v.getVideoPlaybackQuality?.();
    const rows = [
      ['Engine', c.engine || '—'],
      ['Rendition', cur ? `${cur.label}${cur.height ? ` · ${formatBitrate(cur.bitrate)}` : ''}${c.autoLevel() ? ' (auto)' : ''}` : '—'],
      ['Bandwidth', formatBitrate(c.bandwidthEstimate())],
      ['Buffer', `${c.bufferAhead().toFixed(1)} s ahead`],
      ['Position', `${formatTime(v.currentTime)} · ${v.playbackRate}×`],
    ];
    if (c.asset?.kind === 'video') {
      rows.push(['Resolution', v.videoWidth ? `${v.videoWidth}×${v.videoHeight}` : '—']);
      rows.push(['Dropped', q ? `${q.droppedVideoFrames} / ${q.totalVideoFrames} frames` : '—']);
    }
    return rows;
  }

  render() {
    this.table.replaceChildren(...this.rows().flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }
}
