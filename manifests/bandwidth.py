"""Bit rates measured from segment sizes, as HLS and DASH define them."""

from __future__ import annotations

import math

from manifests.model import Rendition


def peak_bitrate(r: Rendition, target: float) -> int:
    """Peak segment bit rate (RFC 8216bis §4.4.6.2 BANDWIDTH).

    "The largest bit rate of any contiguous set of segments whose total duration is
    between 0.5 and 1.5 times the target duration", in bits per second. The init
    segment is counted once with the first segment, since a player must load it to
    play that segment. When no set qualifies (a presentation shorter than half a
    target duration) the whole presentation is the set; a lone segment longer than 1.5
    targets counts on its own.
    """
    segs = r.segments
    if not segs:
        return 0
    lo, hi = 0.5 * target, 1.5 * target
    best = 0.0
    for i in range(len(segs)):
        size = r.init_size if i == 0 else 0
        dur = 0
        for j in range(i, len(segs)):
            size += segs[j].size
            dur += segs[j].duration
            seconds = dur / r.timescale
            # a single segment longer than 1.5 targets still has to be delivered at its rate
            if seconds >= lo and (seconds <= hi or j == i):
                best = max(best, 8 * size / seconds)
            if seconds > hi:
                break
    if best == 0.0:
        total = sum(s.duration for s in segs) / r.timescale
        best = 8 * (r.init_size + sum(s.size for s in segs)) / max(total, 1e-6)
    # A peak below the average is possible with odd segment lengths; BANDWIDTH must still
    # be at least AVERAGE-BANDWIDTH for the pair to make sense to a player.
    return max(math.ceil(best), average_bitrate(r))


def average_bitrate(r: Rendition) -> int:
    """AVERAGE-BANDWIDTH: all media bytes over the whole duration (RFC 8216bis §4.4.6.2)."""
    total = sum(s.duration for s in r.segments) / r.timescale
    if total <= 0:
        return 0
    return math.ceil(8 * sum(s.size for s in r.segments) / total)
