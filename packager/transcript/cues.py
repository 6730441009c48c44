"""The transcript model shared by parsing, checking, segmenting and chapters.

Times are integer milliseconds: WebVTT's own resolution, so that a time read from a
file and written back is the same number and comparisons never suffer float noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packager.errors import InvalidInput

MAX_BYTES = 4 * 1024 * 1024  # a two-hour talk is ~150 kB of timed text; 4 MiB is generous
MAX_CUES = 50_000
MAX_CUE_CHARS = 1_000  # of plain text, per cue: a caption, not a chapter of a book
MAX_TITLE_CHARS = 200  # a chapter title


class TranscriptError(InvalidInput):
    """The transcript cannot be used (exit 2 / HTTP 400); the message names the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(f"transcript: {message}")


@dataclass(frozen=True)
class Cue:
    start: int  # ms on the media timeline (0 = the first sample of the packaged media)
    end: int  # ms, > start
    text: str  # plain text; lines separated by "\n", no blank line
    chapter: str | None = None  # a chapter starts at this cue, with this title

    @property
    def seconds(self) -> tuple[float, float]:
        return self.start / 1000, self.end / 1000


@dataclass(frozen=True)
class Chapter:
    start: int  # ms
    title: str


@dataclass(frozen=True)
class Transcript:
    cues: tuple[Cue, ...]
    chapters: tuple[Chapter, ...] = ()  # the explicit `chapters` list of a JSON transcript
    language: str = "und"  # BCP 47
    warnings: tuple[str, ...] = field(default=(), compare=False)  # what was changed (clipped)


def format_timestamp(ms: int) -> str:
    """A WebVTT timestamp, hours always written: 01:02:03.456."""
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


def format_seconds(ms: int) -> str:
    """ms as seconds for messages: 12.345 s."""
    return f"{ms / 1000:.3f} s"
