"""The transcript rendered for delivery: WebVTT segments aligned to the media segments
(the HLS subtitles rendition), the whole transcript as one WebVTT file (DASH, downloads,
the page's transcript panel) and as plain text.

Alignment (RFC 8216 §3.5): each WebVTT segment covers exactly the time of the media
segment with the same number, and its header maps WebVTT time to media time with
`X-TIMESTAMP-MAP=MPEGTS:<m>,LOCAL:00:00:00.000`, where m is the media timeline's first
presentation time (the first segment's tfdt) in 90 kHz units. Cue times are written on
the media timeline (0 = the first packaged sample), so LOCAL 0 is the media's start.
sori's CMAF audio starts at tfdt 0 with the encoder's priming dropped and no edit list,
and its video is written with negative composition offsets and no edit list, so m is 0
for VOD assets; the function takes the real first tfdt anyway.

A cue that spans a segment boundary is written in every segment it overlaps, with the
same cue identifier and times (RFC 8216 allows it; hls.js and Safari drop the repeat).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packager.transcript.cues import Cue, Transcript, format_timestamp
from packager.transcript.sanitize import escape

MPEGTS_CLOCK = 90_000
MPEGTS_WRAP = 1 << 33  # 33-bit PTS


@dataclass(frozen=True)
class Window:
    """The time of one media segment, in seconds on the media timeline."""

    number: int  # the media segment's number (1-based); the WebVTT segment's too
    start: float
    end: float


def mpegts(first_tfdt: int, timescale: int) -> int:
    """X-TIMESTAMP-MAP's MPEGTS for media whose first presentation time is
    `first_tfdt` in `timescale` ticks (a 33-bit 90 kHz value)."""
    return (first_tfdt * MPEGTS_CLOCK // timescale) % MPEGTS_WRAP


def windows(starts_and_durations: Iterable[tuple[int, int, int]], timescale: int,
            first_tfdt: int = 0) -> list[Window]:
    """Windows from a rendition's (number, tfdt, duration) triples, as seconds from the
    media timeline's start (`first_tfdt`)."""
    return [Window(n, (start - first_tfdt) / timescale, (start - first_tfdt + dur) / timescale)
            for n, start, dur in starts_and_durations]


def cue_block(cue_id: int | str, cue: Cue) -> str:
    """One cue: identifier, timing, escaped plain-text payload, and the blank line after."""
    return (f"{cue_id}\n{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}\n"
            f"{escape(cue.text)}\n\n")


def header(mpegts_value: int | None = None) -> str:
    """WEBVTT, with the timestamp map of a segment when `mpegts_value` is given."""
    if mpegts_value is None:
        return "WEBVTT\n\n"
    return f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts_value},LOCAL:00:00:00.000\n\n"


def in_window(cue: Cue, w: Window) -> bool:
    """The cue is shown during some of the window (touching an edge is not overlapping)."""
    return cue.start / 1000 < w.end and cue.end / 1000 > w.start


def segment_cues(cues: Sequence[Cue], wins: Sequence[Window]) -> list[list[tuple[int, Cue]]]:
    """For each window, the (cue id, cue) pairs it shows; ids are the cues' 1-based order.

    Cues past the last window (none once `sanitize.fit` ran) go to the last window, so no
    text is ever lost; both lists must be in time order. One pass over both lists.
    """
    out: list[list[tuple[int, Cue]]] = [[] for _ in wins]
    first = 0  # the first cue that may still be shown in the current window
    for wi, w in enumerate(wins):
        last = wi == len(wins) - 1
        while first < len(cues) and cues[first].end / 1000 <= w.start:
            first += 1
        i = first
        while i < len(cues) and (last or cues[i].start / 1000 < w.end):
            if in_window(cues[i], w) or last and cues[i].start / 1000 >= w.end:
                out[wi].append((i + 1, cues[i]))
            i += 1
    return out


def segments(t: Transcript, wins: Sequence[Window], mpegts_value: int = 0,
             ) -> list[tuple[int, str]]:
    """(segment number, WebVTT text) for every window, empty segments included (a
    subtitles playlist lists one segment per media segment)."""
    return [(w.number, header(mpegts_value) + "".join(cue_block(n, c) for n, c in shown))
            for w, shown in zip(wins, segment_cues(t.cues, wins), strict=True)]


def whole_vtt(t: Transcript) -> str:
    """The whole transcript as one WebVTT file, cue times on the media timeline."""
    return header() + "".join(cue_block(n, c) for n, c in enumerate(t.cues, start=1))


def plain_text(t: Transcript) -> str:
    """The words, one cue per line; a blank line before each chapter after the first."""
    starts = {c.start for c in t.chapters}
    lines: list[str] = []
    for c in t.cues:
        if lines and (c.chapter is not None or c.start in starts):
            lines.append("")
        lines.append(" ".join(c.text.split("\n")))
    return "\n".join(lines) + "\n"
