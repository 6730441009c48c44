"""The text of a live stream (issue 14): cues timed by the audio that carried them, on the
stream's media timeline, cut into WebVTT segments as the media segments close.

Two time lines meet here. The producer's: the audio it sent, counted in frames of the
PCM that came out of the intake (after a WAV header or a decoder), silence fills and the
end's padding excluded. The media's: everything written to the encoder, fills included
(packager.live.stream: media time is the audio written to the encoder). `fed()` records,
in order, what each write was; a cue is held in producer frames and mapped to media time
through those writes, so a cue keeps to its words when the origin inserts silence before
them, between them or in the middle of a sentence (the cue then spans the fill too).

Ways text arrives (origin.live.ingest documents the wire forms):
- with a chunk: the cue spans exactly that chunk's audio (`chunk_span`). Exact for
  pcm_s16le and WAV, whose frames are written while the chunk is taken. A compressed
  stream (MP3, Opus, AAC) is decoded asynchronously, so its chunk's span is the decoder's
  output between this chunk and the next one written (`pending_chunk`), which trails the
  input by the decoder's latency (tens of milliseconds);
- timed: cues in seconds of the producer's audio (`timed`): the WebSocket's JSON form,
  the `X-Sori-Cues` header, `sori live --transcript` (the file's own cue times). Exact
  for every format.

Pure: no I/O. The stream writes what `segment_text` renders and seals with `transcript`.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from urllib.parse import unquote

from packager.transcript import segment
from packager.transcript.cues import (
    MAX_CUE_CHARS,
    MAX_CUES,
    Chapter,
    Cue,
    Transcript,
    TranscriptError,
)
from packager.transcript.parse import parse_json
from packager.transcript.sanitize import clean_text

# --- the wire forms (origin.live.ingest) ------------------------------------------------


def header_text(value: str, name: str) -> str:
    """A header's percent-encoded UTF-8 (headers are ASCII; `%E2%80%99` is one ’)."""
    try:
        text = unquote(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise TranscriptError(f"{name}: not percent-encoded UTF-8") from None
    if len(text) > 4 * MAX_CUE_CHARS:
        raise TranscriptError(f"{name}: more than {4 * MAX_CUE_CHARS} characters")
    return text


def header_cues(values: list[str], name: str) -> Transcript:
    """Every `name` header of a chunk (one may be repeated): each a JSON cue or list of
    cues, as ASCII JSON (non-ASCII as \\u escapes) or percent-encoded UTF-8; together one
    message. One header per cue keeps each under the server's header size limit (8 KB)."""
    cues: list[object] = []
    for value in values:
        raw = value.strip()
        text = raw if raw[:1] in ("[", "{") else header_text(raw, name)
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise TranscriptError(f"{name}: invalid JSON ({e})") from None
        if len(values) == 1:
            return timed_cues(text)
        if isinstance(doc, dict) and "text" in doc:
            cues.append(doc)
        elif isinstance(doc, list):
            cues.extend(doc)
        else:
            raise TranscriptError(f"{name}: a repeated header holds a cue or a list of cues")
    return parse_json(json.dumps(cues))


def timed_cues(text: str) -> Transcript:
    """Cues timed in seconds of the stream's audio: one {"text", "start", "end",
    "chapter"?} object, a list of them, or {"cues": [...], "chapters"?, "language"?}
    (packager.transcript.parse's JSON form)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise TranscriptError(f"invalid JSON ({e})") from None
    if isinstance(doc, dict) and "text" in doc:
        text = json.dumps([doc])
    return parse_json(text)


@dataclass(frozen=True)
class _Run:
    """Producer frames [speech, speech + n) were written at media frame `media`."""

    speech: int
    media: int
    n: int


@dataclass(frozen=True)
class _Held:
    """A cue in producer frames (end may lie ahead of the audio sent so far)."""

    start: int
    end: int
    text: str
    chapter: str | None = None


class LiveCaptions:
    """One stream's cues and time lines."""

    def __init__(self) -> None:
        self.rate = 0  # frames per second of the intake's PCM (0 until known)
        self.speech_frames = 0  # producer frames written so far
        self.media_frames = 0  # frames written to the encoder so far (fills included)
        self._runs: list[_Run] = []
        self._run_starts: list[int] = []  # speech start of each run, for bisect
        self._held: list[_Held] = []  # in producer time order
        self._chapters: list[Chapter] = []  # explicit (ms, media time), rare
        self._open: tuple[int, str] | None = None  # compressed chunk form: (start, text)
        self.language = "und"

    # --- the time lines ------------------------------------------------------------------

    def fed(self, frames: int, *, speech: bool) -> None:
        """`frames` were written to the encoder: the producer's audio, or a fill/padding."""
        if frames <= 0:
            return
        if speech:
            last = self._runs[-1] if self._runs else None
            if last is not None and last.media + last.n == self.media_frames \
                    and last.speech + last.n == self.speech_frames:
                self._runs[-1] = _Run(last.speech, last.media, last.n + frames)
            else:
                self._runs.append(_Run(self.speech_frames, self.media_frames, frames))
                self._run_starts.append(self.speech_frames)
            self.speech_frames += frames
        self.media_frames += frames

    def _media_start(self, s: int) -> int | None:
        """Media frame where producer frame `s` was written (after any fill before it);
        None when it has not been written yet."""
        if s >= self.speech_frames:
            return None
        i = bisect.bisect_right(self._run_starts, s) - 1
        run = self._runs[max(i, 0)]
        return run.media + max(0, s - run.speech)

    def _media_end(self, e: int) -> int:
        """Media frame where the audio before producer frame `e` ends (a fill right after
        it is not part of it). Past the audio written so far: where it will end if no
        further fill comes (the rest of it is written after everything written so far)."""
        if e > self.speech_frames or not self._runs:
            return self.media_frames + max(0, e - self.speech_frames)
        i = bisect.bisect_left(self._run_starts, e) - 1
        run = self._runs[max(i, 0)]
        return run.media + min(run.n, e - run.speech)

    # --- text in -------------------------------------------------------------------------

    def _frames(self, seconds: float) -> int:
        return round(seconds * self.rate)

    def _add(self, held: _Held) -> None:
        if len(self._held) >= MAX_CUES:
            raise TranscriptError(f"more than {MAX_CUES} cues in one stream")
        if self._held and held.start < self._held[-1].end:
            prev = self._held[-1]
            # Less than WebVTT's millisecond: the same instant, written by two clocks (a
            # chunk's last frame, a cue time in seconds); the new cue starts where it ends.
            if prev.end - held.start <= self.rate // 1000 and held.end > prev.end:
                self._held.append(_Held(prev.end, held.end, held.text, held.chapter))
                return
            if held.start < prev.start:
                raise TranscriptError(
                    f"a cue at {held.start / self.rate:.3f} s of the stream's audio comes "
                    f"before the previous one ({prev.start / self.rate:.3f} s): send cues in "
                    "order")
            raise TranscriptError(
                f"a cue at {held.start / self.rate:.3f} s overlaps the previous one, which "
                f"ends at {prev.end / self.rate:.3f} s")
        self._held.append(held)

    def chunk_span(self, text: str, start: int, end: int) -> None:
        """The chunk whose audio is producer frames [start, end) said `text`."""
        clean = clean_text(text)
        if clean and end > start:
            self._add(_Held(start, end, clean))

    def pending_chunk(self, text: str | None) -> None:
        """A compressed chunk is being written with `text` (or None): the cue of the chunk
        before it ends where the decoder's output stands now; this one starts there."""
        self.close_pending()
        if text is not None:
            clean = clean_text(text)
            if clean:
                self._open = (self.speech_frames, clean)

    def close_pending(self) -> None:
        if self._open is not None:
            start, text = self._open
            self._open = None
            if self.speech_frames > start:
                self._add(_Held(start, self.speech_frames, text))

    def timed(self, t: Transcript) -> None:
        """Cues timed in seconds of the producer's audio (a parsed JSON message: its times
        are in ms, packager.transcript's model)."""
        if not self.rate:
            raise TranscriptError("timed cues need the stream's audio format to be known: "
                                  "send them with or after the first audio")
        for c in t.cues:
            self._add(_Held(self._frames(c.start / 1000), self._frames(c.end / 1000), c.text,
                            c.chapter))
        for ch in t.chapters:
            self._chapters.append(ch)
        if t.language != "und":
            self.language = t.language

    # --- text out ------------------------------------------------------------------------

    def _ms(self, frame: int) -> int:
        return math.floor(frame * 1000 / self.rate) if self.rate else 0

    def cues(self, *, final: bool = False) -> list[Cue]:
        """Every cue whose start has been written, in media ms. Ends beyond the audio so
        far are provisional (no fill assumed); `final` clips them to the audio's end."""
        out: list[Cue] = []
        last_audio = self._media_end(self.speech_frames)
        for h in self._held:
            start = self._media_start(h.start)
            if start is None:
                continue
            end = self._media_end(min(h.end, self.speech_frames) if final else h.end)
            if final:
                end = min(end, last_audio)
            s_ms, e_ms = self._ms(start), self._ms(end)
            if e_ms > s_ms:
                out.append(Cue(s_ms, e_ms, h.text, h.chapter))
        return out

    def unresolved(self, start: float, end: float) -> bool:
        """A cue shown in the media window [start, end) seconds has audio still to come
        (its end is provisional)."""
        for h in reversed(self._held):
            if h.end <= self.speech_frames:
                return False  # this one and every earlier one end within the audio sent
            s = self._media_start(h.start)
            if s is None:
                continue
            if s / self.rate < end and self._media_end(h.end) / self.rate > start:
                return True
        return False

    @property
    def empty(self) -> bool:
        return not self._held and self._open is None

    def chapters(self) -> tuple[Chapter, ...]:
        """Explicit chapters, their producer times mapped to media time."""
        out = []
        for ch in self._chapters:
            start = self._media_start(self._frames(ch.start / 1000))
            if start is not None:
                out.append(Chapter(self._ms(start), ch.title))
        return tuple(out)

    def transcript(self, *, final: bool = False) -> Transcript:
        return Transcript(tuple(self.cues(final=final)), self.chapters(), self.language)

    def segment_text(self, number: int, start: float, end: float, mpegts: int = 0) -> str:
        """WebVTT segment `number` for the media window [start, end) seconds."""
        window = segment.Window(number, start, end)
        shown = [(i, c) for i, c in enumerate(self.cues(), start=1)
                 if segment.in_window(c, window)]
        return segment.header(mpegts) + "".join(segment.cue_block(n, c) for n, c in shown)
