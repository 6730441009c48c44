"""Cue text made safe, and a transcript checked against itself and against the audio.

Text policy: **plain text only**. Every tag is removed (WebVTT's <b>, <i>, <u>, <c>, <v>,
<lang>, <ruby>, inline timestamps, and any HTML; <script>/<style> lose their content too),
character references are decoded, control characters dropped, whitespace collapsed. The
renderings escape `&`, `<` and `>` again, so a cue can never carry markup into a player,
a page or an HTML transcript panel, whatever the input held. Voice spans and styling are
what a TTS transcript rarely needs; one policy for every output keeps the checks simple.
"""

from __future__ import annotations

import html
import re
import unicodedata

from packager.transcript.cues import (
    MAX_CUE_CHARS,
    MAX_TITLE_CHARS,
    Chapter,
    Cue,
    Transcript,
    TranscriptError,
    format_seconds,
    format_timestamp,
)

# A cue may end this much past the packaged audio's end and is clipped to it (a TTS engine's
# word timings and the encoder's last frame rarely agree to the millisecond); further past
# the end, or starting at or after it, is refused: the text would belong to no audio.
END_TOLERANCE_MS = 250

_DROPPED_ELEMENTS = re.compile(r"<\s*(script|style)\b.*?<\s*/\s*\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")


def clean_text(raw: str) -> str:
    """Plain text of a cue payload or title: tags out, entities decoded, one space between
    words, lines kept (none empty). May return "" (a cue of markup only)."""
    text = _DROPPED_ELEMENTS.sub("", raw)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n")
    text = "".join(c for c in text if c == "\n" or c == "\t"
                   or unicodedata.category(c) not in ("Cc", "Cs"))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def escape(text: str) -> str:
    """Cue text as a WebVTT payload: the three characters WebVTT gives meaning escaped, so
    the payload is text and nothing else (also rules out "-->" in a payload)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean_title(raw: str, where: str) -> str:
    title = " ".join(clean_text(raw).split())
    if not title:
        raise TranscriptError(f"{where}: the chapter title is empty")
    if len(title) > MAX_TITLE_CHARS:
        raise TranscriptError(f"{where}: the chapter title has {len(title)} characters, more "
                              f"than {MAX_TITLE_CHARS}")
    return title


def _span(c: Cue) -> str:
    return f"{format_timestamp(c.start)} --> {format_timestamp(c.end)}"


def validate(cues: list[Cue], chapters: list[Chapter], language: str,
             dropped: int = 0) -> Transcript:
    """The structural checks that need no audio: times, text length, overlaps, chapters.

    `cues` in input order (numbered from 1 in messages); the result is in time order.
    Overlapping cues are refused: a TTS engine speaks one sentence at a time, so an
    overlap means the timings are wrong, and players would show two lines at once.
    """
    if not cues:
        raise TranscriptError("no cue has any text" if dropped else "the transcript has no cues")
    numbered = list(enumerate(cues, start=1))
    for n, c in numbered:
        if c.start < 0:
            raise TranscriptError(f"cue {n} starts before 0 ({c.start} ms)")
        if c.end <= c.start:
            raise TranscriptError(f"cue {n} ends at or before its start ({_span(c)})")
        if len(c.text) > MAX_CUE_CHARS:
            raise TranscriptError(f"cue {n} has {len(c.text)} characters of text, more than "
                                  f"{MAX_CUE_CHARS}")
    numbered.sort(key=lambda nc: (nc[1].start, nc[1].end))
    for (na, a), (nb, b) in zip(numbered, numbered[1:], strict=False):
        if b.start < a.end:
            raise TranscriptError(f"cues {na} ({_span(a)}) and {nb} ({_span(b)}) overlap")
    seen: dict[int, str] = {}
    for ch in chapters:
        if ch.start < 0:
            raise TranscriptError(f"chapter {ch.title!r} starts before 0")
        if ch.start in seen:
            raise TranscriptError(f"chapters {seen[ch.start]!r} and {ch.title!r} both start at "
                                  f"{format_timestamp(ch.start)}")
        seen[ch.start] = ch.title
    for _n, c in numbered:
        if c.chapter is not None:
            if c.start in seen and seen[c.start] != c.chapter:
                raise TranscriptError(f"chapters {seen[c.start]!r} and {c.chapter!r} both "
                                      f"start at {format_timestamp(c.start)}")
            seen[c.start] = c.chapter
    return Transcript(tuple(c for _n, c in numbered),
                      tuple(sorted(chapters, key=lambda ch: ch.start)), language)


def fit(t: Transcript, duration_ms: int) -> Transcript:
    """The transcript checked against the packaged audio's duration: a cue or chapter that
    starts at or after the end, or a cue that ends more than END_TOLERANCE_MS past it, is
    refused; a cue ending within the tolerance is clipped to the end (said in warnings)."""
    out: list[Cue] = []
    warnings = list(t.warnings)
    end = format_seconds(duration_ms)
    for n, c in enumerate(t.cues, start=1):
        if c.start >= duration_ms:
            raise TranscriptError(f"cue {n} ({_span(c)}) starts after the audio's end at {end}")
        if c.end > duration_ms + END_TOLERANCE_MS:
            raise TranscriptError(f"cue {n} ({_span(c)}) ends after the audio's end at {end}")
        if c.end > duration_ms:
            warnings.append(f"cue {n} clipped to the audio's end at {end}")
            c = Cue(c.start, duration_ms, c.text, c.chapter)
        out.append(c)
    for ch in t.chapters:
        if ch.start >= duration_ms:
            raise TranscriptError(f"chapter {ch.title!r} starts at {format_seconds(ch.start)}, "
                                  f"after the audio's end at {end}")
    return Transcript(tuple(out), t.chapters, t.language, tuple(warnings))
