"""A live TTS stream: audio in, parts and segments of every rung out, as it is spoken.

    chunks ─> intake (PCM / WAV header / ffmpeg decoder: packager.live.intake)
           ─> float PCM ─> leveller ─> encoder (one ffmpeg, every rung, ADTS per rung)
           ─> publisher (cutters, parts, the store, the growing model:
              packager.live.publish) ─> waiters woken

Media time is the audio written to the encoder. Its clock starts at the first byte the
origin accepts (`start`, the EXT-X-PROGRAM-DATE-TIME of media time 0). When the producer
falls more than `silence_after` behind that clock (the language model is thinking),
silence is written so parts keep their cadence; when it runs ahead, parts are published
as fast as they are encoded, and the encoder's pipe holds the producer back (memory stays
bounded whatever it sends). Ending (or a silent producer past `producer_timeout`) pads
the last segment to at least a quarter of the target, flushes the encoder, and seals the
asset into VOD (packager.live.seal) at the same URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from manifests import layout
from manifests.llhls import LiveTiming, LiveTrack
from packager.errors import InvalidInput, PackagerError
from packager.live import formats
from packager.live.captions import LiveCaptions
from packager.live.encoder import LiveEncoder
from packager.live.intake import Intake
from packager.live.leveller import Leveller
from packager.live.plan import LivePlan
from packager.live.publish import Publisher
from packager.live.track import RungState
from packager.transcript.cues import Transcript
from settings import AudioRung, LiveConfig, PackagerConfig
from storage.base import Store

log = logging.getLogger("sori.live")

TICK = 0.02  # seconds between looks at the clock (silence filler, producer timeout)


class StreamClosed(InvalidInput):
    """The stream has ended (or failed): no more audio is taken."""


class SeqGap(InvalidInput):
    def __init__(self, expected: int) -> None:
        super().__init__(f"chunk out of order: expected seq {expected}")
        self.expected = expected


@dataclass
class Status:
    state: str  # live | sealing | ready | failed
    producer: str  # waiting | speaking | paused | ended
    media_seconds: float
    silence_seconds: float


class LiveStream:
    def __init__(self, asset_id: str, version: str, store: Store, plan: LivePlan,
                 rungs: list[AudioRung], fmt: formats.StreamFormat, live: LiveConfig,
                 packager: PackagerConfig, on_seal: Callable[[LiveStream, str], Any],
                 *, transcript: bool = False) -> None:
        self.asset_id = asset_id
        self.version = version
        self.store = store
        self.plan = plan
        self.rungs = rungs
        self.cfg = live
        self.pcfg = packager
        self.on_seal = on_seal
        self.state = "live"
        self.producer = "waiting"
        self.expected_seq = 0
        self.start: float | None = None  # wall clock of media time 0
        self._audio_zero: float | None = None  # wall clock of the first audio fed (silence clock)
        self.created = time.time()
        self.last_audio = time.monotonic()
        self.fed_frames = 0  # PCM frames written to the encoder
        self.silence_frames = 0  # inserted while the producer lagged
        self.padding_frames = 0  # added at the end (the last segment's minimum, flushing)
        self.error: str | None = None
        self.rungs_state = [
            RungState(r.id, r.sample_rate, r.channels, "mp4a.40.2",
                      layout.rendition_dir(version, r.id), 0) for r in rungs]
        self.changed = asyncio.Event()
        self.ended = asyncio.Event()  # sealed or failed
        self.sealed_playlists: dict[str, str] = {}
        self._work = tempfile.TemporaryDirectory(prefix=f"sori-live-{asset_id}-")
        self.spool = Path(self._work.name)
        self._lock = asyncio.Lock()  # one writer into the encoder at a time
        self._ingest = asyncio.Lock()  # chunks are taken one at a time, in seq order
        self._rate = 0
        self._channels = 0
        self._leveller: Leveller | None = None
        self._encoder: LiveEncoder | None = None
        self._intake = Intake(fmt, asset_id, self._start_encoder, self._speech, self._heard)
        self._tasks: list[asyncio.Task[Any]] = []
        self._out = Publisher(asset_id, store, plan, self.rungs_state, self.spool,
                              self._wake, self._fail)
        self._closing = False
        self._timing: LiveTiming | None = None
        self._text_cache: dict[tuple[int, bool], tuple[int, str]] = {}
        # The text spoken (issue 14): None unless the stream was created with a transcript.
        # subs_ready: WebVTT segments in the store (packager.live.publish.SegmentWriter,
        # `on_segment`, writes them as the media segments close).
        self.captions: LiveCaptions | None = LiveCaptions() if transcript else None
        self.subs_ready = 0
        self.on_segment: Callable[[LiveStream], None] | None = None

    # --- facts -------------------------------------------------------------------------

    @property
    def media_seconds(self) -> float:
        return self.fed_frames / self._rate if self._rate else 0.0

    @property
    def published_parts(self) -> int:
        return self._out.published_parts

    @property
    def published_seconds(self) -> float:
        return float(self.plan.part * self.published_parts)

    def status(self) -> dict[str, Any]:
        return {"id": self.asset_id, "state": self.state, "producer": self.producer,
                "media_seconds": round(self.published_seconds, 3),
                "silence_seconds": round(self.silence_frames / self._rate, 3) if self._rate else 0.0,
                "started": _rfc3339(self.start) if self.start else None,
                "error": self.error}

    def timing(self) -> LiveTiming:
        if self._timing is None:
            self._timing = LiveTiming(self.plan.target_duration, float(self.plan.part_target),
                                      self.start if self.start is not None else self.created)
        return self._timing

    def track(self, index: int) -> LiveTrack:
        return self.rungs_state[index].snapshot()

    # --- start -------------------------------------------------------------------------

    async def open(self) -> None:
        """Write the init segments; start the encoder if the format says its rate."""
        await self._out.write_init(self.rungs)
        await self._intake.open()
        self._tasks.append(asyncio.create_task(self._clock(), name=f"live-clock-{self.asset_id}"))

    async def _start_encoder(self, rate: int, channels: int) -> None:
        self._rate, self._channels = rate, channels
        if self.captions is not None:
            self.captions.rate = rate
        self._leveller = (Leveller(rate, channels, self.pcfg.loudness_target)
                          if self.cfg.loudness else None)
        enc = LiveEncoder(rate, channels, self.rungs, self.pcfg.aac_coder,
                          self.pcfg.true_peak if self.cfg.loudness else None)
        await enc.start()
        self._encoder = enc
        self._tasks += self._out.follow(enc)

    # --- ingest ------------------------------------------------------------------------

    async def append(self, seq: int | None, data: bytes, *, text: str | None = None,
                     cues: Transcript | None = None) -> bool:
        """Take one chunk; returns False for a repeated seq (acknowledged, ignored).
        Raises SeqGap, StreamClosed or InvalidInput (the chunk is refused). `text` is what
        the chunk's audio says, `cues` text timed on the producer's audio
        (packager.live.captions); either needs a stream created with a transcript."""
        async with self._ingest:
            if seq is not None:
                if seq < self.expected_seq:
                    return False
                if seq > self.expected_seq:
                    raise SeqGap(self.expected_seq)
            if self.error:  # first: it says why the stream is ending
                raise InvalidInput(self.error)
            if self.state != "live" or self._closing:
                raise StreamClosed(f"live stream {self.asset_id!r} has ended")
            if len(data) > self.cfg.max_chunk_bytes:
                raise InvalidInput(f"chunk of {len(data)} bytes is over live.max_chunk_bytes "
                                   f"({self.cfg.max_chunk_bytes})")
            if (text is not None or cues is not None) and self.captions is None:
                raise InvalidInput("this stream has no transcript: create it with "
                                   "\"transcript\": true to send text with its audio")
            if cues is not None and self.captions is not None and self.captions.rate:
                self.captions.timed(cues)  # refused before any of the chunk is taken
                cues = None
            if seq is not None:
                self.expected_seq = seq + 1
            before = self.captions.speech_frames if self.captions is not None else 0
            if data:
                await self._take(data)
            if self.captions is not None:
                self._caption_chunk(text, before, bool(data))
                if cues is not None:
                    self.captions.timed(cues)
            return True

    async def between_chunks(self) -> None:
        """Returns once no chunk is being taken: the text of every chunk taken so far is in
        `captions` (a media segment may close while a chunk's audio is still being fed)."""
        async with self._ingest:
            return

    def _caption_chunk(self, text: str | None, before: int, audio: bool) -> None:
        """The chunk's text: exactly its frames for PCM and WAV (written while it was
        taken), the decoder's output until the next chunk for a compressed stream."""
        assert self.captions is not None
        if self._intake.decoder is not None:
            if audio:
                self.captions.pending_chunk(text)
        elif text is not None:
            self.captions.chunk_span(text, before, self.captions.speech_frames)

    async def _take(self, data: bytes) -> None:
        if self.start is None:
            self.start = time.time()
            self._timing = None
        self.last_audio = time.monotonic()
        try:
            await self._intake.take(data)
        except InvalidInput as e:
            self.error = str(e)  # the stream ends with it; later chunks are refused
            raise

    def _heard(self) -> None:
        self.last_audio = time.monotonic()

    async def _speech(self, samples: np.ndarray) -> None:
        await self._feed(samples, speech=True)

    async def _feed(self, samples: np.ndarray, *, speech: bool, padding: bool = False) -> None:
        """Write float samples (interleaved) to the encoder, levelled when speech."""
        async with self._lock:
            if self._encoder is None:
                return
            frames = len(samples) // self._channels
            if frames == 0:
                return
            if speech and self._leveller is not None:
                samples = self._leveller.process(samples)
            if speech:
                self.producer = "speaking"
                if self._audio_zero is None:
                    self._audio_zero = time.time()
            elif padding:
                self.padding_frames += frames
            else:
                self.silence_frames += frames
            self.fed_frames += frames
            if self.captions is not None:
                self.captions.fed(frames, speech=speech)
            limit = self.pcfg.max_duration * self._rate
            try:
                await self._encoder.write(np.ascontiguousarray(samples, dtype="<f4").tobytes())
            except (ConnectionError, BrokenPipeError):
                self.error = "the encoder stopped: " + "; ".join(self._encoder.errors[-2:])
                raise PackagerError(self.error) from None
            if self.fed_frames > limit:
                self.error = (f"the stream is over packager.max_duration "
                              f"({self.pcfg.max_duration:.0f} s)")

    async def _silence(self, frames: int, *, padding: bool = False) -> None:
        if frames > 0:
            await self._feed(np.zeros(frames * self._channels, dtype=np.float32), speech=False,
                             padding=padding)

    # --- the clock: silence when the producer lags, timeout when it is gone -------------

    async def _clock(self) -> None:
        while not self._closing and self.state == "live":
            await asyncio.sleep(TICK)
            now = time.monotonic()
            if self.error and not self._closing:
                asyncio.create_task(self.end(reason="error"))
                return
            if now - self.last_audio > self.cfg.producer_timeout and self.start is not None:
                log.info("live %s: producer silent for %.0f s, sealing", self.asset_id,
                         self.cfg.producer_timeout)
                asyncio.create_task(self.end(reason="timeout"))
                return
            if now - self.last_audio > self.cfg.producer_timeout * 4:
                asyncio.create_task(self.end(reason="timeout"))  # never started
                return
            if self._audio_zero is None or self._encoder is None or self._lock.locked():
                continue
            # Counted from the first audio the encoder got, not the first byte: a decoder
            # still starting (MP3, Opus, AAC) is not a producer falling behind.
            behind = (time.time() - self._audio_zero) - self.media_seconds
            # Once paused, the silence keeps pace with the clock at every tick (parts come
            # at an even cadence), rather than in steps of `silence_after`.
            if behind > self.cfg.silence_after or (self.producer == "paused" and behind > 0):
                self.producer = "paused"
                await self._silence(int(behind * self._rate))

    def _fail(self, message: str) -> None:
        self.error = message

    def _wake(self) -> None:
        if self.on_segment is not None and self.captions is not None \
                and len(self.rungs_state[0].segments) > self.subs_ready:
            self.on_segment(self)  # a media segment closed: its WebVTT segment follows
        self.notify()

    def notify(self) -> None:
        """Wake whoever waits on a change (a part, a WebVTT segment, the end)."""
        old = self.changed
        self.changed = asyncio.Event()
        old.set()

    # --- waiting (origin) --------------------------------------------------------------

    async def wait_change(self, seconds: float) -> bool:
        """Wait for the next published part (or the end); False after `seconds`."""
        if self.ended.is_set():
            return True
        event = self.changed
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        return True

    def playlist_text(self, index: int, skip: bool,
                      render: Callable[[int, bool], str]) -> str:
        """The rendered playlist for rung `index`, once per published part."""
        key = (index, skip)
        cached = self._text_cache.get(key)
        if cached is not None and cached[0] == self.published_parts:
            return cached[1]
        text = render(index, skip)
        self._text_cache[key] = (self.published_parts, text)
        return text

    # --- the end -----------------------------------------------------------------------

    async def end(self, *, reason: str = "end") -> None:
        """Finish the stream and seal it (idempotent; concurrent callers wait)."""
        if self._closing:
            await self.ended.wait()
            return
        self._closing = True
        try:
            await self._finish()
        except BaseException:
            self.state = "failed"
            self.ended.set()
            self._wake()
            raise
        await self.on_seal(self, reason)

    async def _finish(self) -> None:
        async with self._ingest:
            await self._intake.finish()
            if self.captions is not None:
                self.captions.close_pending()  # a compressed stream's last chunk of text
            if self._intake.unrecognised:
                self.error = self.error or "the stream ended before its format could be recognised"
            if self._encoder is None or self.fed_frames == 0:
                raise InvalidInput(self.error or "the stream ended without any audio")
            self.producer = "ended"
            # The last segment holds at least a quarter of the target (no sliver), and
            # every rung's last part completes: pad silence past the chosen end.
            plan = self.plan
            end_part = max(1, math.ceil(self.media_seconds / float(plan.part) - 1e-9))
            last_number = plan.locate(end_part - 1)[0]
            seg_first = plan.first_part_of(last_number)
            need = math.ceil(0.25 * plan.target_duration / float(plan.part) - 1e-9)
            end_part = max(end_part, seg_first + min(need, plan.parts_in(last_number)))
            self._out.end_part = end_part
            tail = float(plan.part) * end_part + 3 * 1024 / min(r.sample_rate for r in self.rungs)
            await self._silence(int(math.ceil((tail - self.media_seconds) * self._rate)),
                                padding=True)
            await self._encoder.close_input()
            for t in self._tasks:
                if t.get_name().startswith("live-rung"):
                    await t
            await self._encoder.wait()
            if self.published_parts < end_part:
                raise PackagerError(f"the encoder stopped early ({self.published_parts} of "
                                    f"{end_part} parts): " + "; ".join(self._encoder.errors[-2:]))

    async def abort(self) -> None:
        """Stop everything without sealing (origin shutdown: the asset stays live in the
        store and is sealed from there when an origin starts)."""
        self._closing = True
        self._intake.kill()
        if self._encoder is not None:
            self._encoder.kill()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        await self._intake.reap()
        if self._encoder is not None and self._encoder.proc is not None:
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(5):
                    await self._encoder.proc.wait()  # reaped: no transport left behind
        self.ended.set()
        self._wake()

    def cleanup(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._intake.kill()
        if self._encoder is not None:
            self._encoder.kill()
        self._work.cleanup()


def _rfc3339(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
