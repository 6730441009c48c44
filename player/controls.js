// The stage's controls: play/pause, seek bar with previews, volume, speed, quality menu,
// fullscreen, loading and error states, the keyboard shortcuts, and for a live stream its
// LIVE badge, the producer's state and the "jump to live" button.

import { el, icon, clamp, formatTime, formatBitrate, store } from './util.js';
import { cueAt } from './thumbnails.js';

export const RATES = [0.75, 1, 1.25, 1.5, 2];
const IDLE_MS = 2500;
const LIVE_BEHIND_S = 3; // "jump to live" shows when the playhead is further behind than this

const $ = (root, sel) => root.querySelector(sel);

export class Controls {
  constructor(stage, controller) {
    this.stage = stage;
    this.controller = controller;
    this.video = controller.video;
    this.thumbs = null;
    this.duration = 0;
    this._idleTimer = 0;
    this._scrubbing = false;

    this.playBtn = $(stage, '[data-action=play]');
    this.bigPlay = $(stage, '.big-play');
    this.muteBtn = $(stage, '[data-action=mute]');
    this.volume = $(stage, '.volume');
    this.seek = $(stage, '.seek-input');
    this.preview = $(stage, '.seek-preview');
    this.previewImg = $(stage, '.seek-preview-img');
    this.previewTime = $(stage, '.seek-preview-time');
    this.time = $(stage, '.time');
    this.rateBtn = $(stage, '[data-action=rate]');
    this.qualityBtn = $(stage, '[data-action=quality]');
    this.fsBtn = $(stage, '[data-action=fullscreen]');
    this.menu = $(stage, '.menu');
    this.errorBox = $(stage, '.error-box');
    this.toastEl = $(stage, '.toast');
    this.liveInfo = $(stage, '.live-info');
    this.liveBadge = $(stage, '.live-badge');
    this.liveStatus = $(stage, '.live-status');
    this.liveBtn = $(stage, '[data-action=live]');
    this.live = false;
    // The chapter at a time, {title} or null (player/chapters.js sets it): named in the seek
    // bar's preview and aria-valuetext. 'c' toggles captions through onCaptionsKey.
    this.chapterAt = () => null;
    this.onCaptionsKey = null;

    this._bindVideo();
    this._bindControls();
    this._bindController();
    this._restorePrefs();
  }

  // ---- state from the media element ---------------------------------------------------

  _bindVideo() {
    const v = this.video;
    const on = (name, fn) => v.addEventListener(name, fn);
    on('play', () => this._setPlaying(true));
    on('pause', () => this._setPlaying(false));
    on('ended', () => this._setPlaying(false));
    on('playing', () => { this.setLoading(false); this._setPlaying(true); });
    on('waiting', () => this.setLoading(true));
    on('seeking', () => { if (!v.paused) this.setLoading(true); });
    on('canplay', () => { if (v.paused) this.setLoading(false); });
    on('timeupdate', () => { this._renderTime(); if (this.live) this._renderLiveEdge(); });
    on('progress', () => this._renderBuffered());
    on('durationchange', () => this._renderTime());
    on('loadedmetadata', () => this._renderTime());
    on('volumechange', () => this._renderVolume());
    on('ratechange', () => this._renderRate());
    on('error', () => {
      // Engines report their own errors; this catches the native HLS path.
      if (this.controller.engine === 'native' && v.error) {
        this.controller._fatal('native', 'This stream could not be played by the browser.');
      }
    });
  }

  _bindController() {
    const c = this.controller;
    c.addEventListener('levels', () => this._renderQuality());
    c.addEventListener('level', () => this._renderQuality());
    c.addEventListener('engine', () => this._renderQuality());
    c.addEventListener('fatal', (e) => this.showError(e.detail.message));
    c.addEventListener('notice', (e) => this.toast(e.detail.message));
    c.addEventListener('autoplay-blocked', () => { this.setLoading(false); this._setPlaying(false); });
    c.addEventListener('liveedge', () => this._renderLiveEdge());
  }

  _bindControls() {
    this.playBtn.addEventListener('click', () => this.togglePlay());
    this.bigPlay.addEventListener('click', () => this.togglePlay());
    this.video.addEventListener('click', () => { if (this.stage.dataset.kind === 'video') this.togglePlay(); });
    this.video.addEventListener('dblclick', () => this.toggleFullscreen());
    this.muteBtn.addEventListener('click', () => this.toggleMute());
    this.volume.addEventListener('input', () => {
      this.video.volume = Number(this.volume.value);
      this.video.muted = this.video.volume === 0;
    });
    this.fsBtn.addEventListener('click', () => this.toggleFullscreen());
    this.liveBtn.addEventListener('click', () => this.jumpToLive());
    this.rateBtn.addEventListener('click', (e) => { e.stopPropagation(); this._toggleMenu('rate'); });
    this.qualityBtn.addEventListener('click', (e) => { e.stopPropagation(); this._toggleMenu('quality'); });
    this.menu.addEventListener('click', (e) => e.stopPropagation());
    document.addEventListener('click', () => this.closeMenu());
    $(this.errorBox, 'button').addEventListener('click', () => this.stage.dispatchEvent(new Event('retry')));

    // Seek bar: the input's value is the target time; previews follow the pointer.
    this.seek.addEventListener('input', () => {
      this._scrubbing = true;
      this._renderProgress(Number(this.seek.value));
      this._showPreview(Number(this.seek.value));
    });
    this.seek.addEventListener('change', () => {
      this._scrubbing = false;
      this.seekTo(Number(this.seek.value));
      this._hidePreview();
    });
    this.seek.addEventListener('pointermove', (e) => {
      const r = this.seek.getBoundingClientRect();
      this._showPreview(clamp((e.clientX - r.left) / r.width, 0, 1) * this._duration());
    });
    this.seek.addEventListener('pointerleave', () => { if (!this._scrubbing) this._hidePreview(); });

    // Controls fade out while a video plays and the pointer rests.
    for (const name of ['pointermove', 'pointerdown', 'focusin']) {
      this.stage.addEventListener(name, () => this._wake());
    }
    this.stage.addEventListener('pointerleave', () => this._sleepSoon(600));
    document.addEventListener('fullscreenchange', () => {
      this.stage.classList.toggle('is-fullscreen', document.fullscreenElement === this.stage);
      this.fsBtn.replaceChildren(icon(document.fullscreenElement ? 'fullscreen-exit' : 'fullscreen'));
    });
  }

  _restorePrefs() {
    const volume = store.get('sori:volume');
    if (typeof volume === 'number') this.video.volume = clamp(volume, 0, 1);
    const rate = store.get('sori:rate');
    if (RATES.includes(rate)) this.video.defaultPlaybackRate = this.video.playbackRate = rate;
    this._renderVolume();
    this._renderRate();
  }

  // ---- a new asset --------------------------------------------------------------------

  /** Reset the stage for `asset`; `thumbs` are its seek-bar previews (or null). */
  reset(asset) {
    this.duration = asset.duration || 0;
    this.thumbs = null;
    this.hideError();
    this.closeMenu();
    this.stage.dataset.kind = asset.kind === 'video' ? 'video' : 'audio';
    this.stage.classList.remove('is-started');
    this.video.poster = asset.poster || '';
    clearTimeout(this._liveInfoTimer);
    this.liveInfo.hidden = asset.state !== 'live';
    this.setLive(asset.state === 'live');
    this.setLiveStatus('');
    this._renderProgress(0);
    this._renderTime();
    this._renderQuality();
  }

  /** The asset's record changed (a live stream turned into a VOD asset): its duration. */
  update(asset) {
    this.duration = asset.duration || 0;
    this._renderTime();
  }

  // ---- live ---------------------------------------------------------------------------

  /** Show (or take away) the LIVE badge; the jump button follows the playhead while live. */
  setLive(on) {
    this.live = on;
    this.stage.classList.toggle('is-live', on);
    this.liveBadge.hidden = !on;
    if (on) {
      clearTimeout(this._liveInfoTimer);
      this.liveInfo.hidden = false;
    }
    this._renderLiveEdge();
  }

  /** The producer's state next to the badge ('' for none); `kind` styles it. */
  setLiveStatus(text, kind = '') {
    this.liveStatus.textContent = text;
    this.liveStatus.hidden = !text;
    this.liveInfo.dataset.producer = kind;
  }

  /** The stream ended: the badge goes, the status says so for a few seconds, then the stage
   *  looks like any VOD asset's. */
  liveEnded(status) {
    this.setLive(false);
    if (status) this.setLiveStatus(status, 'ended');
    clearTimeout(this._liveInfoTimer);
    this._liveInfoTimer = setTimeout(() => { this.liveInfo.hidden = true; }, status ? 6000 : 0);
  }

  jumpToLive() {
    this.controller.jumpToLive();
    this._wake();
    this._renderLiveEdge();
  }

  _renderLiveEdge() {
    const behind = this.live ? this.controller.liveBehind() : 0;
    const show = behind > LIVE_BEHIND_S;
    if (this.liveBtn.hidden === show) this.liveBtn.hidden = !show;
    if (show) this.liveBtn.title = `Jump to live (${Math.round(behind)} s behind)`;
  }

  setThumbnails(cues) {
    this.thumbs = cues?.length ? cues : null;
  }

  setLoading(on) {
    this.stage.classList.toggle('is-loading', on);
  }

  // ---- actions ------------------------------------------------------------------------

  togglePlay() {
    if (!this.controller.engine) {
      this.stage.dispatchEvent(new Event('start'));
      return;
    }
    if (this.video.paused || this.video.ended) {
      this.video.play().catch(() => {});
    } else {
      this.video.pause();
    }
  }

  seekTo(t) {
    const d = this._duration();
    this.video.currentTime = clamp(t, 0, d ? d - 0.05 : t);
    this._renderProgress(this.video.currentTime);
    this._wake();
  }

  seekBy(dt) {
    this.seekTo(this.video.currentTime + dt);
    this.toast(`${dt > 0 ? '+' : '−'}${Math.abs(dt)} s`, 700);
  }

  toggleMute() {
    this.video.muted = !this.video.muted;
    if (!this.video.muted && this.video.volume === 0) this.video.volume = 0.5;
  }

  setRate(rate) {
    this.video.playbackRate = rate;
    this.video.defaultPlaybackRate = rate;
    store.set('sori:rate', rate);
  }

  stepRate(dir) {
    const i = RATES.indexOf(this.video.playbackRate);
    const next = RATES[clamp((i < 0 ? 1 : i) + dir, 0, RATES.length - 1)];
    this.setRate(next);
    this.toast(`Speed ${next}×`, 900);
  }

  toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    } else if (this.stage.requestFullscreen) {
      this.stage.requestFullscreen().catch(() => {});
    } else if (this.video.webkitEnterFullscreen) {
      this.video.webkitEnterFullscreen(); // iPhone: only the video element can go full screen
    }
  }

  // ---- rendering ----------------------------------------------------------------------

  _duration() {
    const d = this.video.duration;
    if (Number.isFinite(d) && d > 0) return d;
    // A live stream whose engine says Infinity (dash.js, Safari): what can be seeked to.
    const s = d === Infinity ? this.video.seekable : null;
    return s?.length ? s.end(s.length - 1) : this.duration;
  }

  _setPlaying(playing) {
    this.stage.classList.toggle('is-playing', playing);
    if (playing) this.stage.classList.add('is-started');
    this.playBtn.replaceChildren(icon(playing ? 'pause' : 'play'));
    this.playBtn.setAttribute('aria-label', playing ? 'Pause (k)' : 'Play (k)');
    if (playing) this._sleepSoon(); else this._wake();
  }

  _renderTime() {
    const d = this._duration();
    this.seek.max = String(d || 0);
    if (!this._scrubbing) this._renderProgress(this.video.currentTime);
    this.time.textContent = `${formatTime(this.video.currentTime)} / ${formatTime(d)}`;
  }

  _renderProgress(t) {
    const d = this._duration();
    if (!this._scrubbing) this.seek.value = String(t);
    this.seek.style.setProperty('--progress', d ? `${(100 * t) / d}%` : '0%');
    const chapter = this.chapterAt(t);
    this.seek.setAttribute('aria-valuetext', `${formatTime(t)} of ${formatTime(d)}${chapter ? `, ${chapter.title}` : ''}`);
    this._renderBuffered();
  }

  _renderBuffered() {
    const d = this._duration();
    const ahead = this.controller.bufferAhead();
    const end = d ? Math.min(d, this.video.currentTime + ahead) : 0;
    this.seek.style.setProperty('--buffered', d ? `${(100 * end) / d}%` : '0%');
  }

  _renderVolume() {
    const v = this.video;
    const muted = v.muted || v.volume === 0;
    this.muteBtn.replaceChildren(icon(muted ? 'volume-off' : 'volume'));
    this.muteBtn.setAttribute('aria-label', muted ? 'Unmute (m)' : 'Mute (m)');
    this.volume.value = String(muted ? 0 : v.volume);
    this.volume.style.setProperty('--progress', `${muted ? 0 : v.volume * 100}%`);
    if (!muted) store.set('sori:volume', v.volume);
  }

  _renderRate() {
    this.rateBtn.textContent = `${this.video.playbackRate}×`;
    if (this.menu.dataset.open === 'rate') this._fillMenu('rate');
  }

  _renderQuality() {
    const c = this.controller;
    const levels = c.levels();
    const cur = levels[c.currentLevel()];
    const auto = c.autoLevel();
    let label = 'Auto';
    if (auto && cur) label = `Auto · ${cur.label}`;
    else if (!auto && cur) label = cur.label;
    this.qualityBtn.querySelector('.label').textContent = label;
    this.qualityBtn.disabled = levels.length < 2;
    this.qualityBtn.dataset.level = String(c.currentLevel());
    if (this.menu.dataset.open === 'quality') this._fillMenu('quality');
  }

  // ---- menus --------------------------------------------------------------------------

  _toggleMenu(kind) {
    if (this.menu.dataset.open === kind) this.closeMenu();
    else this._openMenu(kind);
  }

  _openMenu(kind) {
    this._fillMenu(kind);
    this.menu.dataset.open = kind;
    this.menu.hidden = false;
    const btn = kind === 'rate' ? this.rateBtn : this.qualityBtn;
    btn.setAttribute('aria-expanded', 'true');
    // Keep the menu above its button, inside the stage.
    const s = this.stage.getBoundingClientRect();
    const b = btn.getBoundingClientRect();
    this.menu.style.right = `${Math.max(8, s.right - b.right)}px`;
    this.menu.style.maxHeight = `${Math.max(120, s.height - 80)}px`;
    this.menu.querySelector('[aria-checked=true]')?.focus({ preventScroll: true });
    this._wake();
  }

  closeMenu() {
    if (this.menu.hidden) return;
    this.menu.hidden = true;
    delete this.menu.dataset.open;
    this.rateBtn.setAttribute('aria-expanded', 'false');
    this.qualityBtn.setAttribute('aria-expanded', 'false');
  }

  _fillMenu(kind) {
    const item = (label, checked, onPick, extra = {}, hint = '') => el('button', {
      type: 'button', role: 'menuitemradio', class: 'menu-item', 'aria-checked': String(checked), ...extra,
      onclick: () => { onPick(); this.closeMenu(); },
    }, el('span', { class: 'check' }, icon('check')), el('span', {}, label), hint ? el('span', { class: 'hint' }, hint) : null);

    const items = [];
    if (kind === 'rate') {
      items.push(el('div', { class: 'menu-title' }, 'Speed'));
      for (const r of RATES) {
        items.push(item(r === 1 ? 'Normal' : `${r}×`, this.video.playbackRate === r,
          () => this.setRate(r), { dataset: { rate: r } }));
      }
    } else {
      const c = this.controller;
      const levels = c.levels();
      const auto = c.autoLevel();
      const cur = c.currentLevel();
      items.push(el('div', { class: 'menu-title' }, 'Quality'));
      items.push(item('Auto', auto, () => c.setLevel(-1), { dataset: { level: -1 } },
        auto && levels[cur] ? levels[cur].label : ''));
      // Highest first, as players usually list them.
      for (const l of [...levels].sort((a, b) => (b.height - a.height) || (b.bitrate - a.bitrate))) {
        items.push(item(l.label, !auto && cur === l.index, () => c.setLevel(l.index),
          { dataset: { level: l.index } }, l.height ? formatBitrate(l.bitrate) : ''));
      }
    }
    this.menu.replaceChildren(...items);
  }

  // ---- previews, errors, toasts -------------------------------------------------------

  _showPreview(t) {
    const d = this._duration();
    if (!d) return;
    const r = this.seek.getBoundingClientRect();
    const s = this.stage.getBoundingClientRect();
    const cue = cueAt(this.thumbs, t);
    this.preview.classList.toggle('has-image', Boolean(cue));
    if (cue) {
      const w = cue.w ?? 160;
      const h = cue.h ?? 90;
      Object.assign(this.previewImg.style, {
        width: `${w}px`, height: `${h}px`,
        backgroundImage: `url("${cue.url}")`,
        backgroundPosition: cue.x !== undefined ? `-${cue.x}px -${cue.y}px` : 'center',
        backgroundSize: cue.x !== undefined ? 'auto' : 'cover',
      });
    }
    const chapter = this.chapterAt(t);
    this.previewTime.textContent = chapter ? `${chapter.title} · ${formatTime(t)}` : formatTime(t);
    this.preview.hidden = false;
    const half = this.preview.offsetWidth / 2;
    const x = clamp(r.left - s.left + (t / d) * r.width, half + 4, s.width - half - 4);
    this.preview.style.left = `${x}px`;
  }

  _hidePreview() {
    this.preview.hidden = true;
  }

  showError(message) {
    this.setLoading(false);
    $(this.errorBox, '.error-message').textContent = message;
    this.errorBox.hidden = false;
    this.stage.classList.add('has-error');
  }

  hideError() {
    this.errorBox.hidden = true;
    this.stage.classList.remove('has-error');
  }

  toast(message, ms = 2500) {
    this.toastEl.textContent = message;
    this.toastEl.hidden = false;
    clearTimeout(this._toastTimer);
    this._toastTimer = setTimeout(() => { this.toastEl.hidden = true; }, ms);
  }

  _wake() {
    this.stage.classList.remove('is-idle');
    this._sleepSoon();
  }

  _sleepSoon(ms = IDLE_MS) {
    clearTimeout(this._idleTimer);
    this._idleTimer = setTimeout(() => {
      if (!this.video.paused && this.stage.dataset.kind === 'video' && this.menu.hidden) {
        this.stage.classList.add('is-idle');
      }
    }, ms);
  }

  // ---- keyboard -----------------------------------------------------------------------

  /** Handle a page-level keydown; returns true when it was a player shortcut. */
  handleKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return false;
    const t = e.target;
    const typing = t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))
      && !t.classList.contains('seek-input') && !t.classList.contains('volume');
    if (typing) return false;
    switch (e.key) {
      case ' ':
      case 'k':
        if (e.key === ' ' && t instanceof HTMLButtonElement && !t.closest('.controls')) return false;
        this.togglePlay(); break;
      case 'ArrowLeft': this.seekBy(-5); break;
      case 'ArrowRight': this.seekBy(5); break;
      case 'j': this.seekBy(-10); break;
      case 'l': this.seekBy(10); break;
      case 'm': this.toggleMute(); break;
      case 'f': this.toggleFullscreen(); break;
      case 'c':
        if (!this.onCaptionsKey?.()) return false;
        break;
      case '>': this.stepRate(1); break;
      case '<': this.stepRate(-1); break;
      case 'Escape': this.closeMenu(); return false;
      default: return false;
    }
    return true;
  }
}
