// The player controller: one <video> element, driven by hls.js (MSE), the browser's own HLS
// (Safari, iOS) or dash.js, behind one small interface the controls and the stats use.
//
// Events (EventTarget): 'engine' (an engine attached), 'levels' (the rendition list changed),
// 'level' (the rendition being played changed), 'fatal' ({detail: {message}}), 'notice'
// ({detail: {message}}: a recoverable problem being handled); for a live asset also
// 'liveedge' (a live playlist was reloaded: the live edge moved) and 'liveended' (the engine
// saw the stream end: EXT-X-ENDLIST, or a static MPD).
//
// CMCD (player/cmcd.js): every playback is one CMCD session. Its engine sends CMCD v1 with
// each request, and `this.cmcd` (a CmcdReporter) its play states as CMCD v2 events, under
// the same session id.

import { loadScript, renditionLabel } from './util.js';
import { CmcdReporter, newSessionId, hlsCmcd, dashCmcd } from './cmcd.js';

const DASH_SCRIPT = '/vendor/dash.all.min.js';
const HLS_SCRIPT = '/vendor/hls.min.js';

/** Resolves once the page's async hls.js script has run or failed (_loadHls then says
 *  which); loads it itself if the page has no such tag. */
function hlsScriptSettled() {
  if (window.Hls || window.soriHlsFailed) return Promise.resolve();
  const tag = document.querySelector(`script[src="${HLS_SCRIPT}"]`);
  if (!tag) return loadScript(HLS_SCRIPT).catch(() => {});
  return new Promise((resolve) => {
    tag.addEventListener('load', resolve, { once: true });
    tag.addEventListener('error', resolve, { once: true });
  });
}
const MAX_NETWORK_RETRIES = 5;
// dash.js error codes of failed downloads: manifest, sidx, media segment, init segment
const DASH_DOWNLOAD_ERRORS = new Set([25, 26, 27, 28]);
const MEDIA_RECOVERY_WINDOW_MS = 3000;

export class PlayerController extends EventTarget {
  constructor(video) {
    super();
    this.video = video;
    this.hls = null;
    this.dash = null;
    this.engine = null; // 'hls.js' | 'native' | 'dash.js'
    this.asset = null;
    this.live = false; // playing a live stream that has not ended
    this.fatalErrors = [];
    this.levelSwitches = [];
    this._networkRetries = 0;
    this._retryTimer = 0;
    this._lastMediaRecovery = 0;
    this._mediaRecoveries = 0;
    this._generation = 0;
    this._nativeOff = null;
    this.cmcd = null; // the CMCD v2 reporter of the playback (player/cmcd.js)
  }

  /** Tear down any engine and play `asset` (HLS unless `dash`), from `startAt` seconds. */
  async load(asset, { dash = false, autoplay = true, startAt = 0 } = {}) {
    this.destroy();
    const generation = ++this._generation;
    this._cmcdFrom = { askedAt: performance.now(), autoplay };
    this.asset = asset;
    this.live = asset.state === 'live';
    if (dash) {
      window.soriBoot?.take(asset, { hls: false }); // an early hls.js instance must not stay
      await this._loadDash(asset, autoplay, startAt, generation);
    } else {
      await hlsScriptSettled();
      if (generation === this._generation) this._loadHls(asset, autoplay, startAt);
    }
  }

  destroy() {
    clearTimeout(this._retryTimer);
    this._networkRetries = 0;
    this._mediaRecoveries = 0;
    this.cmcd?.end();
    this.cmcd = null;
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    if (this.dash) { this.dash.destroy(); this.dash = null; }
    this._nativeOff?.();
    this._nativeOff = null;
    if (this.engine === 'native') {
      this.video.removeAttribute('src');
      this.video.load();
    }
    this.engine = null;
    this.live = false;
  }

  // ---- HLS ---------------------------------------------------------------------------

  _loadHls(asset, autoplay, startAt) {
    const Hls = window.Hls;
    const video = this.video;
    if (Hls?.isSupported()) {
      // The page's boot script may have started this very stream already (index.html).
      const boot = window.soriBoot;
      const early = boot?.take(asset, { startAt }) ?? null;
      const live = this.live;
      const hls = early || new Hls({ ...(boot?.hlsConfig(startAt, false, live)
        ?? { startPosition: startAt > 0 ? startAt : live ? 0 : -1, ...(live ? { lowLatencyMode: true } : {}) }),
      cmcd: hlsCmcd(asset.id, newSessionId()) });
      this.hls = hls;
      this.engine = 'hls.js';
      this._startCmcd(hls.config.cmcd?.sessionId || hls.sessionId);
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        this._emit('levels');
        if (autoplay) this._play();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
        this.levelSwitches.push(data.level);
        this._emit('level');
        this.cmcd?.bitrateChanged();
      });
      hls.on(Hls.Events.FRAG_LOADED, () => { this._networkRetries = 0; });
      hls.on(Hls.Events.ERROR, (_e, data) => this._onHlsError(data));
      if (live) {
        hls.on(Hls.Events.LEVEL_UPDATED, (_e, data) => this._onLiveDetails(data.details));
        if (early && hls.latestLevelDetails) this._onLiveDetails(hls.latestLevelDetails);
      }
      if (early) {
        // What happened before the handlers above were attached.
        if (hls.levels?.length) {
          this._emit('levels');
          if (autoplay) this._play();
        }
        if (hls.currentLevel >= 0) this._emit('level');
        if (boot.fatal) this._onHlsError(boot.fatal);
      } else {
        // Media first: the MediaSource opens while the playlists load.
        hls.attachMedia(video);
        hls.loadSource(asset.hls);
      }
      this._emit('engine');
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      window.soriBoot?.take(asset, { hls: false });
      this.engine = 'native';
      this._startCmcd(newSessionId()); // v2 reports only: Safari sends no CMCD itself
      video.src = asset.hls;
      // A live playlist says EXT-X-START:TIME-OFFSET=0, which Safari honours.
      if (startAt > 0) {
        video.addEventListener('loadedmetadata', () => { video.currentTime = startAt; }, { once: true });
      }
      if (this.live) {
        const ended = () => {
          if (Number.isFinite(video.duration)) this._liveEnded();
          else this._emit('liveedge');
        };
        video.addEventListener('durationchange', ended);
        video.addEventListener('progress', ended);
        this._nativeOff = () => {
          video.removeEventListener('durationchange', ended);
          video.removeEventListener('progress', ended);
        };
      }
      this._emit('engine');
      this._emit('levels');
      if (autoplay) this._play();
    } else if (!Hls) {
      this._fatal('hls', 'The player library did not load. Run `make demo` to install it.');
    } else {
      this._fatal('hls', 'This browser cannot play HLS (it has neither Media Source Extensions nor native HLS).');
    }
  }

  // hls.js recovers from fatal errors only when told to; non-fatal ones it handles itself.
  _onHlsError(data) {
    if (!data.fatal) return;
    const Hls = window.Hls;
    const hls = this.hls;
    switch (data.type) {
      case Hls.ErrorTypes.NETWORK_ERROR: {
        if (this._networkRetries >= MAX_NETWORK_RETRIES || data.details === Hls.ErrorDetails.MANIFEST_PARSING_ERROR) {
          this._fatal(data.type, this._networkMessage(data), data.details);
          hls.destroy();
          this.hls = null;
          return;
        }
        const delay = Math.min(8000, 500 * 2 ** this._networkRetries);
        this._networkRetries += 1;
        this._notice(`Network problem, retrying (${this._networkRetries}/${MAX_NETWORK_RETRIES})…`);
        clearTimeout(this._retryTimer);
        // A live stream carries on from where it is being listened to: hls.startLoad() with no
        // position would, before the first frame, start at the live edge rather than at 0.
        const live = this.live;
        this._retryTimer = setTimeout(() => {
          if (this.hls !== hls) return;
          if (live) hls.startLoad(this.video.currentTime > 0 ? this.video.currentTime : Math.max(0, hls.config.startPosition));
          else hls.startLoad();
        }, delay);
        return;
      }
      case Hls.ErrorTypes.MEDIA_ERROR: {
        const now = performance.now();
        if (now - this._lastMediaRecovery > MEDIA_RECOVERY_WINDOW_MS) this._mediaRecoveries = 0;
        this._lastMediaRecovery = now;
        this._mediaRecoveries += 1;
        if (this._mediaRecoveries === 1) {
          this._notice('Media error, recovering…');
          hls.recoverMediaError();
          return;
        }
        if (this._mediaRecoveries === 2) {
          this._notice('Media error, retrying with the other audio codec…');
          hls.swapAudioCodec();
          hls.recoverMediaError();
          return;
        }
        break;
      }
      default:
        break;
    }
    this._fatal(data.type, `Playback failed (${data.details}). Try another rendition or reload the page.`, data.details);
    hls.destroy();
    this.hls = null;
  }

  /** A live playlist was (re)loaded: the edge moved, or the stream ended (EXT-X-ENDLIST). */
  _onLiveDetails(details) {
    if (!this.live || !details) return;
    if (details.live === false) this._liveEnded();
    else this._emit('liveedge');
  }

  _liveEnded() {
    if (!this.live) return;
    this.live = false;
    this._emit('liveended');
  }

  /** Seconds the playhead is behind the point a live stream is best listened at (0 when not
   *  live or not known yet). */
  liveBehind() {
    const target = this.liveSyncPosition();
    return target === null ? 0 : Math.max(0, target - this.video.currentTime);
  }

  /** Where "live" is: hls.js's live sync position (live edge minus the target latency), or
   *  null when not live. */
  liveSyncPosition() {
    if (!this.live) return null;
    if (this.hls) {
      const p = this.hls.liveSyncPosition;
      return Number.isFinite(p) ? p : null;
    }
    // dash.js and Safari: the end of what can be seeked to is the live edge.
    const s = this.video.seekable;
    if (!s.length || !(this.dash || this.engine === 'native')) return null;
    let delay = 3;
    if (this.dash) {
      try { delay = this.dash.getTargetLiveDelay() || 0; } catch { return null; }
    }
    return Math.max(s.start(s.length - 1), s.end(s.length - 1) - delay);
  }

  /** Seek to the live sync position. */
  jumpToLive() {
    if (this.dash && this.live) {
      try { this.dash.seekToOriginalLive(); } catch { /* not live after all */ }
      return;
    }
    const target = this.liveSyncPosition();
    if (target !== null) this.video.currentTime = target;
    if (this.video.paused) this._play();
  }

  _networkMessage(data) {
    const status = data.response?.code;
    if (status === 404) return 'This stream could not be found on the server (404). It may have been deleted.';
    if (status === 403) return 'The server refused this stream (403): its signed link has expired or is not valid for this asset. Try again for a fresh link.';
    if (status) return `The server answered ${status} while loading the stream.`;
    return 'The stream could not be loaded: the server is unreachable. Check your connection and try again.';
  }

  // ---- DASH --------------------------------------------------------------------------

  async _loadDash(asset, autoplay, startAt, generation) {
    if (!asset.dash) {
      this._fatal('dash', 'This asset has no DASH manifest.');
      return;
    }
    try {
      await loadScript(DASH_SCRIPT);
    } catch {
      this._fatal('dash', 'The DASH player library did not load. Run `make demo` to install it.');
      return;
    }
    if (generation !== this._generation) return; // another load() started meanwhile
    const dashjs = window.dashjs;
    const player = dashjs.MediaPlayer().create();
    this.dash = player;
    this.engine = 'dash.js';
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    const sid = newSessionId();
    player.updateSettings(dashCmcd(asset.id, sid));
    this._startCmcd(sid);
    // A live stream plays from its first word at normal speed: no catch-up towards the edge.
    const live = this.live;
    if (live) player.updateSettings({ streaming: { liveCatchup: { enabled: false } } });
    const E = dashjs.MediaPlayer.events;
    player.on(E.STREAM_INITIALIZED, () => this._emit('levels'));
    player.on(E.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType !== this._dashType()) return;
      this.levelSwitches.push(this.currentLevel());
      this._emit('level');
      this.cmcd?.bitrateChanged();
    });
    player.on(E.ERROR, (e) => {
      const err = e.error || {};
      // A live stream's download error (dash.js has retried already): load the MPD again
      // from the playhead, a few times. When the stream has just ended, dash.js may have
      // asked for a segment after the last one before it saw the static MPD.
      if (live && DASH_DOWNLOAD_ERRORS.has(err.code) && this._networkRetries < MAX_NETWORK_RETRIES) {
        const delay = Math.min(8000, 500 * 2 ** this._networkRetries);
        this._networkRetries += 1;
        if (this.live) this._notice(`Network problem, retrying (${this._networkRetries}/${MAX_NETWORK_RETRIES})…`);
        const at = this.video.currentTime;
        clearTimeout(this._retryTimer);
        this._retryTimer = setTimeout(() => { if (this.dash === player) player.attachSource(asset.dash, at); }, delay);
        return;
      }
      this._fatal('dash', `Playback failed: ${err.message || 'the DASH stream could not be played'}.`, String(err.code ?? ''));
    });
    if (live) {
      player.on(E.FRAGMENT_LOADING_COMPLETED, () => { this._networkRetries = 0; });
      // The MPD turns static when the stream ends.
      player.on(E.MANIFEST_LOADED, (e) => {
        if (e.data && e.data.type === 'static') this._liveEnded();
        else this._emit('liveedge');
      });
    }
    player.initialize(this.video, asset.dash, autoplay, startAt > 0 ? startAt : live ? 0 : NaN);
    this._emit('engine');
  }

  _dashType() {
    return this.asset?.kind === 'video' ? 'video' : 'audio';
  }

  _dashReps() {
    try { return this.dash?.getRepresentationsByType(this._dashType()) || []; } catch { return []; }
  }

  // ---- renditions --------------------------------------------------------------------

  /** [{index, bitrate, height, width, label}] in the engine's order. */
  levels() {
    let raw = [];
    if (this.hls) raw = this.hls.levels.map((l) => ({ bitrate: l.bitrate, height: l.height || 0, width: l.width || 0, codec: l.audioCodec || '' }));
    else if (this.dash) raw = this._dashReps().map((r) => ({ bitrate: r.bandwidth, height: r.height || 0, width: r.width || 0, codec: r.codecs || '' }));
    return raw.map((l, index) => ({ ...l, index, label: renditionLabel(l) }));
  }

  /** Index of the rendition being played, -1 when unknown. */
  currentLevel() {
    if (this.hls) return this.hls.currentLevel;
    if (this.dash) {
      const cur = this.dash.getCurrentRepresentationForType(this._dashType());
      return cur ? this._dashReps().findIndex((r) => r.id === cur.id) : -1;
    }
    return -1;
  }

  autoLevel() {
    if (this.hls) return this.hls.autoLevelEnabled;
    if (this.dash) {
      const abr = this.dash.getSettings().streaming.abr.autoSwitchBitrate;
      return abr[this._dashType()] !== false;
    }
    return true;
  }

  /** Play rendition `n` (manual), or let the engine choose with -1 (auto). */
  setLevel(n) {
    if (this.hls) {
      this.hls.currentLevel = n;
    } else if (this.dash) {
      const type = this._dashType();
      this.dash.updateSettings({ streaming: { abr: { autoSwitchBitrate: { [type]: n < 0 } } } });
      const rep = this._dashReps()[n];
      if (rep) this.dash.setRepresentationForTypeById(type, rep.id, true);
    }
    this._emit('level');
  }

  bandwidthEstimate() {
    if (this.hls) return this.hls.bandwidthEstimate;
    if (this.dash) return (this.dash.getAverageThroughput(this._dashType()) || 0) * 1000;
    return NaN;
  }

  bufferAhead() {
    const { buffered, currentTime } = this.video;
    for (let i = 0; i < buffered.length; i += 1) {
      if (buffered.start(i) <= currentTime + 0.1 && currentTime <= buffered.end(i)) {
        return buffered.end(i) - currentTime;
      }
    }
    return 0;
  }

  // ---- helpers -----------------------------------------------------------------------

  /** The CMCD v2 reporter of this playback, under session id `sid` (the one its engine
   *  sends with each request); `sta=s` now when the playback starts by itself. */
  _startCmcd(sid) {
    const asset = this.asset;
    this.cmcd = new CmcdReporter(this.video, {
      sid, cid: asset.id, type: asset.kind === 'video' ? 'v' : 'a', askedAt: this._cmcdFrom.askedAt,
      bitrate: () => this.levels()[this.currentLevel()]?.bitrate ?? NaN,
      throughput: () => this.bandwidthEstimate(),
    });
    if (this._cmcdFrom.autoplay) this.cmcd.starting();
  }

  _play() {
    const p = this.video.play();
    if (p?.catch) {
      p.catch((err) => {
        if (err?.name === 'NotAllowedError') this._emit('autoplay-blocked');
      });
    }
  }

  _notice(message) {
    this.dispatchEvent(new CustomEvent('notice', { detail: { message } }));
  }

  /** A failure before any engine ran (the playback URLs could not be had): shown as fatal. */
  fail(message, details = '') {
    this._fatal('access', message, details);
  }

  _fatal(type, message, details = '') {
    this.cmcd?.fatal();
    this.fatalErrors.push({ type, details, message });
    this.dispatchEvent(new CustomEvent('fatal', { detail: { message } }));
  }

  _emit(name) {
    this.dispatchEvent(new Event(name));
  }
}
