"""Chapters: from a transcript's marked cues and its `chapters` list, rendered as Apple's
HLS chapters JSON and as a chapters WebVTT track.

Apple's form ("Providing JavaScript Object Notation (JSON) chapters", HLS): a JSON array,
one entry per chapter, each with a required `start-time` (seconds) and optional
`chapter` (its number, for readability), `duration`, `titles` (a list of
{"language": BCP 47, "title"}), `images` and `metadata`. The multivariant playlist points
at it with `#EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="..."`. sori writes
every chapter's number, start, duration (to the next chapter, the last to the end) and
its title in the transcript's language ("und" when it is not known).

The WebVTT form (one cue per chapter, the title as its text) is what HTML's
<track kind="chapters"> and the page's seek-bar marks read.
"""

from __future__ import annotations

import json

from packager.transcript.cues import Chapter, Cue, Transcript
from packager.transcript.segment import cue_block, header

SESSION_DATA_ID = "com.apple.hls.chapters"


def collect(t: Transcript) -> list[Chapter]:
    """Every chapter in time order: the explicit list and the cues marked as chapters
    (one per start time; `sanitize.validate` refused two different titles at one time)."""
    by_start = {c.start: c.title for c in t.chapters}
    for cue in t.cues:
        if cue.chapter is not None:
            by_start.setdefault(cue.start, cue.chapter)
    return [Chapter(start, title) for start, title in sorted(by_start.items())]


def _spans(chapters: list[Chapter], duration_ms: int) -> list[tuple[Chapter, int]]:
    """Each chapter with its end: the next chapter's start, the last one the media's end."""
    ends = [c.start for c in chapters[1:]] + [duration_ms]
    return [(c, max(end, c.start)) for c, end in zip(chapters, ends, strict=True)]


def apple_json(chapters: list[Chapter], duration_ms: int, language: str = "und") -> str:
    """Apple's HLS chapters JSON (see the module docstring)."""
    entries = []
    for n, (c, end) in enumerate(_spans(chapters, duration_ms), start=1):
        entry: dict[str, object] = {"chapter": n, "start-time": c.start / 1000}
        if end > c.start:
            entry["duration"] = (end - c.start) / 1000
        entry["titles"] = [{"language": language or "und", "title": c.title}]
        entries.append(entry)
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


def chapters_vtt(chapters: list[Chapter], duration_ms: int) -> str:
    """A WebVTT chapters track: one cue per chapter, from its start to the next one's."""
    blocks = [cue_block(n, Cue(c.start, end, c.title))
              for n, (c, end) in enumerate(_spans(chapters, duration_ms), start=1) if end > c.start]
    return header() + "".join(blocks)
