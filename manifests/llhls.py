"""Rendering Low-Latency HLS (RFC 8216bis, draft 22) live playlists from a growing model.

A live rendition is its completed segments (the ordinary model), the part durations of
each, and the parts of the segment in progress. The media playlist is an EVENT playlist
(only ever appended to) with parts for the segments within the last three target
durations (§4.4.4.9 lets older part tags go; their files stay), a preload hint for the
next part, a report of every other rendition, EXT-X-PROGRAM-DATE-TIME, and on request a
delta update that skips what lies before the Skip Boundary (§4.4.5.2, §6.2.5.1).

Numbers that are MUSTs in the draft and how they are met here:
- every part <= PART-TARGET, and >= 85% of it except a segment's last (packager.live.plan);
- PART-HOLD-BACK = 3 x PART-TARGET (at least 3x), HOLD-BACK = 3 x target duration;
- CAN-SKIP-UNTIL = 6 x target duration (at least 6x);
- one EXT-X-TARGETDURATION for every media playlist of the asset, live and sealed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from manifests import layout, tags
from manifests.hls import format_duration
from manifests.hls import media_playlist as media_playlist_vod
from manifests.model import Rendition

LIVE_VERSION = 9  # EXT-X-SKIP (delta updates) needs version 9 (§7)


@dataclass(frozen=True)
class LiveTiming:
    """What every playlist of one live asset shares."""

    target_duration: int
    part_target: float  # seconds; the longest part of any rung
    start: float  # wall clock (epoch seconds) of media time 0: EXT-X-PROGRAM-DATE-TIME

    @property
    def part_target_text(self) -> str:
        return _ceil_decimal(self.part_target)

    @property
    def part_hold_back(self) -> float:
        # three times the PART-TARGET as written, rounded up (never under 3x)
        return float(_ceil_decimal(3 * float(self.part_target_text)))

    @property
    def hold_back(self) -> float:
        return 3.0 * self.target_duration

    @property
    def skip_until(self) -> float:
        return 6.0 * self.target_duration


@dataclass(frozen=True)
class LiveTrack:
    """One rendition of a live asset: completed segments and the parts of each."""

    rendition: Rendition  # .segments are the completed segments
    parts: tuple[tuple[int, ...], ...]  # part durations (ticks) of each completed segment
    open_parts: tuple[int, ...]  # part durations (ticks) of the segment in progress

    @property
    def next_number(self) -> int:
        """Number of the segment in progress (or the next one to start)."""
        segs = self.rendition.segments
        return segs[-1].number + 1 if segs else 1

    @property
    def last_msn_part(self) -> tuple[int, int] | None:
        """(MSN, part index) of the newest part, None before the first."""
        if self.open_parts:
            return self.next_number, len(self.open_parts) - 1
        segs = self.rendition.segments
        if not segs:
            return None
        return segs[-1].number, len(self.parts[-1]) - 1

    def has_part(self, msn: int, part: int | None) -> bool:
        """True once the playlist holds segment `msn` (complete when `part` is None)
        or part `part` of it, or anything later (§6.2.5.2)."""
        segs = self.rendition.segments
        if segs and msn <= segs[-1].number:
            if part is None or msn < segs[-1].number:
                return True
            return part < len(self.parts[msn - segs[0].number]) or msn < self.next_number
        if part is None:
            return False
        if msn == self.next_number:
            return part < len(self.open_parts)
        return False


def _ceil_decimal(seconds: float, places: int = 5) -> str:
    """A decimal no smaller than `seconds` (a target must never undercut what it bounds)."""
    scale = 10 ** places
    return f"{math.ceil(seconds * scale - 1e-6) / scale:.{places}f}".rstrip("0").rstrip(".")


def format_pdt(epoch: float) -> str:
    """EXT-X-PROGRAM-DATE-TIME value: ISO 8601 with milliseconds and a time zone."""
    t = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def part_uri(number: int, index: int) -> str:
    return layout.part_name(number, index)


def _part_line(r: Rendition, number: int, index: int, ticks: int) -> str:
    return (f'{tags.PART}:DURATION={format_duration(r.seconds(ticks))},'
            f'URI="{part_uri(number, index)}",INDEPENDENT=YES')


def media_playlist(track: LiveTrack, timing: LiveTiming, *,
                   reports: Iterable[tuple[str, LiveTrack]] = (), skip: bool = False,
                   parts_per_segment: int | None = None) -> str:
    """The live media playlist of `track`; `reports` are (relative URI, track) of the
    other renditions; `skip` asks for a delta update (_HLS_skip=YES). With
    `parts_per_segment`, a segment in progress that already holds all its parts (it is
    about to be closed) makes the preload hint name the next segment's first part, not a
    part that will never exist."""
    r = track.rendition
    segs = r.segments
    first = segs[0].number if segs else 1
    lines = [
        tags.EXTM3U,
        f"{tags.VERSION}:{LIVE_VERSION}",
        f"{tags.TARGETDURATION}:{timing.target_duration}",
        f"{tags.MEDIA_SEQUENCE}:{first}",
        f"{tags.PLAYLIST_TYPE}:EVENT",
        tags.INDEPENDENT_SEGMENTS,
        f"{tags.START}:TIME-OFFSET=0",
        f"{tags.SERVER_CONTROL}:CAN-BLOCK-RELOAD=YES,"
        f"CAN-SKIP-UNTIL={timing.skip_until:g},"
        f"PART-HOLD-BACK={timing.part_hold_back:g},HOLD-BACK={timing.hold_back:g}",
        f"{tags.PART_INF}:PART-TARGET={timing.part_target_text}",
        f'{tags.MAP}:URI="{layout.INIT}"',
    ]
    ends = []  # end time (seconds) of each completed segment
    t = 0.0
    for s in segs:
        t += r.seconds(s.duration)
        ends.append(t)
    total = t + r.seconds(sum(track.open_parts))
    skipped = 0
    if skip and total > timing.skip_until:
        boundary = total - timing.skip_until
        while skipped < len(segs) and ends[skipped] <= boundary:
            skipped += 1
    if skipped:
        lines.append(f"{tags.SKIP}:SKIPPED-SEGMENTS={skipped}")
    start_of_listed = ends[skipped - 1] if skipped else 0.0
    if segs or track.open_parts:
        lines.append(f"{tags.PROGRAM_DATE_TIME}:{format_pdt(timing.start + start_of_listed)}")
    # Part tags for every segment that ends within the last 3 target durations.
    parts_from = total - 3 * timing.target_duration
    for i in range(skipped, len(segs)):
        s = segs[i]
        if ends[i] > parts_from:
            lines += [_part_line(r, s.number, k, d) for k, d in enumerate(track.parts[i])]
        lines.append(f"{tags.EXTINF}:{format_duration(r.seconds(s.duration))},")
        lines.append(layout.segment_name(s.number))
    number = track.next_number
    lines += [_part_line(r, number, k, d) for k, d in enumerate(track.open_parts)]
    nxt = len(track.open_parts)
    if parts_per_segment is not None and nxt >= parts_per_segment:
        number, nxt = number + 1, 0
    lines.append(f'{tags.PRELOAD_HINT}:TYPE=PART,URI="{part_uri(number, nxt)}"')
    for uri, other in reports:
        last = other.last_msn_part
        if last is None:
            msn, part = other.next_number, 0  # nothing yet: point at what comes first
            lines.append(f'{tags.RENDITION_REPORT}:URI="{uri}",LAST-MSN={msn},LAST-PART={part}')
        else:
            lines.append(f'{tags.RENDITION_REPORT}:URI="{uri}",LAST-MSN={last[0]},'
                         f'LAST-PART={last[1]}')
    return "\n".join(lines) + "\n"


def sealed_media_playlist(r: Rendition, target: int, start: float) -> str:
    """The playlist a live rendition ends as: the ordinary VOD playlist (CONTRACT §5), with
    the target duration it had while live and its EXT-X-PROGRAM-DATE-TIME kept."""
    lines = media_playlist_vod(r, target=target).split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(tags.MAP)) + 1
    lines.insert(at, f"{tags.PROGRAM_DATE_TIME}:{format_pdt(start)}")
    return "\n".join(lines)


def live_multivariant(variants: Iterable[tuple[str, int, str]],
                      subtitles: str | None = None) -> str:
    """The multivariant playlist while live: (media playlist URI, BANDWIDTH upper bound,
    CODECS) per rung, lowest first. Measured values replace it at sealing. `subtitles`:
    the URI of the stream's WebVTT playlist (issue 14), declared as at sealing
    (manifests.subtitles: group "subs", SUBTITLES= on every variant)."""
    lines = [tags.EXTM3U, f"{tags.VERSION}:{tags.PLAYLIST_VERSION}", tags.INDEPENDENT_SEGMENTS]
    group = ""
    if subtitles is not None:
        lines.append(live_subtitles_media(subtitles))
        group = f',SUBTITLES="{SUBTITLES_GROUP}"'
    for uri, bandwidth, codecs in sorted(variants, key=lambda v: v[1]):
        lines.append(f'{tags.STREAM_INF}:BANDWIDTH={bandwidth},CODECS="{codecs}"{group}')
        lines.append(uri)
    return "\n".join(lines) + "\n"


# --- the subtitles rendition of a live stream (issue 14) --------------------------------

SUBTITLES_GROUP = "subs"  # manifests.subtitles.GROUP: the same group live and sealed


def live_subtitles_media(uri: str, name: str = "Transcript", language: str = "und") -> str:
    """The EXT-X-MEDIA of a live stream's subtitles (AUTOSELECT, not DEFAULT: a player
    shows them when its user asks, as for VOD)."""
    return (f'{tags.MEDIA}:TYPE=SUBTITLES,GROUP-ID="{SUBTITLES_GROUP}",NAME="{name}",'
            f'LANGUAGE="{language}",DEFAULT=NO,AUTOSELECT=YES,URI="{uri}"')


def live_subtitles_playlist(durations: Iterable[float], timing: LiveTiming, *,
                            first_number: int = 1) -> str:
    """The WebVTT media playlist of a live stream: an EVENT playlist of one segment per
    completed media segment (same number, same EXTINF), no parts (players load text by
    segment). It does not offer blocking reload (no EXT-X-SERVER-CONTROL), although the
    origin honours `_HLS_msn` on it: hls.js 1.7 holding a blocking subtitles request
    beside its LL-HLS audio requests stopped loading audio when its buffer target was
    small (the page's early start uses one second), while a plain live playlist, reloaded
    every target duration, costs captions at most that much delay."""
    lines = [
        tags.EXTM3U,
        f"{tags.VERSION}:{LIVE_VERSION}",
        f"{tags.TARGETDURATION}:{timing.target_duration}",
        f"{tags.MEDIA_SEQUENCE}:{first_number}",
        f"{tags.PLAYLIST_TYPE}:EVENT",
    ]
    durations = list(durations)
    if durations:
        lines.append(f"{tags.PROGRAM_DATE_TIME}:{format_pdt(timing.start)}")
    for i, seconds in enumerate(durations):
        lines.append(f"{tags.EXTINF}:{format_duration(seconds)},")
        lines.append(layout.subtitle_segment_name(first_number + i))
    return "\n".join(lines) + "\n"
