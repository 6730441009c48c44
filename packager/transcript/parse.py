"""Reading a transcript: WebVTT, SRT or JSON bytes -> a checked Transcript.

The format is recognised from the content (a file name's extension is only a fallback
for the error message): a `WEBVTT` signature, a JSON array or object, else SRT.

JSON forms (times in seconds, numbers):

    [{"start": 0.0, "end": 2.4, "text": "Hello.", "chapter": true}, ...]
    {"language": "en", "cues": [...as above...], "chapters": [{"start": 0, "title": "Intro"}]}

A cue's `"chapter": true` starts a chapter titled with the cue's text; `"chapter": "Title"`
names it. Chapters therefore come with a JSON transcript (marked cues and/or the
`chapters` list); WebVTT and SRT transcripts carry cues only.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from packager.transcript.cues import (
    MAX_BYTES,
    MAX_CUES,
    MAX_TITLE_CHARS,
    Chapter,
    Cue,
    Transcript,
    TranscriptError,
)
from packager.transcript.sanitize import clean_text, clean_title, validate

_TIME = r"(?:(\d+):)?([0-5]\d):([0-5]\d)[.,](\d{3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s+-->\s+{_TIME}(?:\s+.*)?$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")


def parse(data: bytes, name: str = "") -> Transcript:
    """Decode, recognise and parse `data`; raises TranscriptError naming the problem."""
    text = decode(data)
    head = text.lstrip()
    if head.startswith("WEBVTT") and (len(head) == 6 or head[6] in " \t\n"):
        return parse_webvtt(text)
    if head[:1] in ("[", "{"):
        return parse_json(text)
    if name.lower().endswith(".vtt"):
        raise TranscriptError("a WebVTT file must start with the line WEBVTT")
    return parse_srt(text)


def decode(data: bytes) -> str:
    if not data.strip():
        raise TranscriptError("the transcript is empty")
    if len(data) > MAX_BYTES:
        raise TranscriptError(f"the transcript is {len(data)} bytes, more than the limit of "
                              f"{MAX_BYTES}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise TranscriptError(f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}, "
                              f"line {line}); save it as UTF-8") from None


def _ms(groups: tuple[str | None, ...]) -> int:
    h, m, s, f = groups
    return ((int(h or 0) * 60 + int(m or 0)) * 60 + int(s or 0)) * 1000 + int(f or 0)


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks, each with the line number of its first line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    first = 0
    for i, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                first = i
            current.append(line)
        elif current:
            out.append((first, current))
            current = []
    if current:
        out.append((first, current))
    return out


def _cue(start: int, end: int, payload: str, cues: list[Cue]) -> int:
    """Append a cue with cleaned text; 1 if it was dropped for having none."""
    text = clean_text(payload)
    if not text:
        return 1
    cues.append(Cue(start, end, text))
    if len(cues) > MAX_CUES:
        raise TranscriptError(f"more than {MAX_CUES} cues")
    return 0


def _timed_blocks(text: str, kind: str, skip_header: bool) -> tuple[list[Cue], int]:
    cues: list[Cue] = []
    dropped = 0
    blocks = _blocks(text)
    for index, (line_no, lines) in enumerate(blocks):
        if skip_header and index == 0:  # WEBVTT and its header lines
            timing = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
            if timing is not None:
                raise TranscriptError(f"{kind} line {line_no + timing}: a blank line must "
                                      "separate the WEBVTT header from the first cue")
            continue
        if kind == "WebVTT" and lines[0].split(maxsplit=1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        timing_at = next((i for i, ln in enumerate(lines[:2]) if "-->" in ln), None)
        if timing_at is None:
            raise TranscriptError(f"{kind} line {line_no}: expected a cue timing line "
                                  "(00:00:01.000 --> 00:00:02.000)")
        m = _TIMING.match(lines[timing_at])
        if m is None:
            raise TranscriptError(f"{kind} line {line_no + timing_at}: bad cue timing "
                                  f"{lines[timing_at].strip()[:80]!r}")
        g = m.groups()
        dropped += _cue(_ms(g[:4]), _ms(g[4:]), "\n".join(lines[timing_at + 1:]), cues)
    return cues, dropped


def parse_webvtt(text: str) -> Transcript:
    first = text.lstrip().split("\n", 1)[0]
    if not first.startswith("WEBVTT"):
        raise TranscriptError("a WebVTT file must start with the line WEBVTT")
    cues, dropped = _timed_blocks(text.lstrip(), "WebVTT", skip_header=True)
    return validate(cues, [], "und", dropped)


def parse_srt(text: str) -> Transcript:
    cues, dropped = _timed_blocks(text, "SRT", skip_header=False)
    return validate(cues, [], "und", dropped)


def _seconds(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TranscriptError(f"{where} must be a number of seconds")
    return round(value * 1000)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TranscriptError(f"{where} must be a string")
    return value


def parse_json(text: str) -> Transcript:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise TranscriptError(f"invalid JSON ({e})") from None
    language = "und"
    chapters: list[Chapter] = []
    if isinstance(doc, dict):
        unknown = set(doc) - {"cues", "chapters", "language"}
        if unknown:
            raise TranscriptError(f"unknown JSON keys {sorted(unknown)}: use cues, chapters, "
                                  "language")
        if "language" in doc:
            language = _text(doc["language"], "language")
            if not _LANGUAGE.match(language):
                raise TranscriptError(f"language {language[:40]!r} is not a BCP 47 tag "
                                      "(for example en or pt-BR)")
        raw_chapters = doc.get("chapters", [])
        if not isinstance(raw_chapters, list):
            raise TranscriptError("chapters must be a list of {\"start\", \"title\"}")
        for i, item in enumerate(raw_chapters, start=1):
            where = f"chapter {i}"
            if not isinstance(item, dict) or "start" not in item or "title" not in item:
                raise TranscriptError(f"{where} must be an object with start and title")
            chapters.append(Chapter(_seconds(item["start"], f"{where}: start"),
                                    clean_title(_text(item["title"], f"{where}: title"), where)))
        doc = doc.get("cues")
    if not isinstance(doc, list):
        raise TranscriptError('JSON must be a list of {"start", "end", "text"} cues, or an '
                              'object with such a list as "cues"')
    if len(doc) > MAX_CUES:
        raise TranscriptError(f"more than {MAX_CUES} cues")
    cues: list[Cue] = []
    dropped = 0
    for i, item in enumerate(doc, start=1):
        where = f"cue {i}"
        if not isinstance(item, dict):
            raise TranscriptError(f"{where} must be an object with start, end and text")
        missing = [k for k in ("start", "end", "text") if k not in item]
        if missing:
            raise TranscriptError(f"{where} has no {', '.join(missing)}")
        start = _seconds(item["start"], f"{where}: start")
        end = _seconds(item["end"], f"{where}: end")
        raw = _text(item["text"], f"{where}: text")
        text = clean_text(raw)
        mark = item.get("chapter", False)
        title: str | None
        if mark is True:  # titled by the cue's own words (its first line, shortened)
            first = text.split("\n", 1)[0]
            title = first if len(first) <= MAX_TITLE_CHARS else \
                first[:MAX_TITLE_CHARS - 1].rstrip() + "\u2026"
            if not title:
                raise TranscriptError(f"{where}: a chapter cue needs text to be its title")
        elif isinstance(mark, str):
            title = clean_title(mark, where)
        elif mark is False or mark is None:
            title = None
        else:
            raise TranscriptError(f"{where}: chapter must be true, false or a title")
        if not text:
            if title is not None:
                chapters.append(Chapter(start, title))
            dropped += 1
            continue
        cues.append(Cue(start, end, text, title))
    return validate(cues, chapters, language, dropped)
