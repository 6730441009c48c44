"""Which stretch of media time a response carried: [t0, t1) in seconds of the asset.

IAB counts a listener's content, not requests: a download is judged on the union of what
one client received, whatever mix of segments (any rendition) and byte ranges it took.

- media segment N of a rendition (`v/{version}/{rendition}/seg_0000N.m4s`):
  [(N-1)*segment_duration, N*segment_duration), clipped to the asset's duration;
- LL-HLS part k of segment N (`seg_0000N.k.m4s`): that part's stretch;
- the progressive download (rel "download"): the bytes actually sent, in proportion to
  the file's size: from the Range's first byte to that plus the body's length. A 206
  whose first byte is unknown (an access log has no Range) is a Span with `t0` None: a
  length of media time that counting adds to the union (resumed downloads do not
  overlap);
- playlists, init segments, images, subtitles: no media time (None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analytics.events import AssetInfo

_SEGMENT = re.compile(r"v/[0-9a-z]{1,40}/([A-Za-z0-9._-]{1,64})/seg_([0-9]{1,9})(?:\.([0-9]{1,4}))?\.m4s")
_RENDITION = re.compile(r"v/[0-9a-z]{1,40}/([A-Za-z0-9._-]{1,64})/[^/]+")
_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]{0,19})\s*-\s*([0-9]{0,19})\s*")
DOWNLOAD = "download"


@dataclass(frozen=True, slots=True)
class Span:
    t0: float | None  # None: the offset is unknown, only the length (t1) is
    t1: float
    rendition: str | None = None

    @property
    def seconds(self) -> float:
        return self.t1 if self.t0 is None else self.t1 - self.t0


def rendition_of(rel: str) -> str | None:
    """`v/{version}/{rendition}/...` -> rendition id (None for other paths)."""
    m = _RENDITION.fullmatch(rel)
    return m.group(1) if m else None


def range_start(header: str | None, total: int) -> int | None:
    """First byte of a single `bytes=` range (suffix ranges need the total); None when
    absent or unreadable."""
    if not header:
        return None
    m = _RANGE.fullmatch(header[:100])
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first:
        return int(first)
    if last and total > 0:
        return max(0, total - int(last))
    return None


def download_size(info: AssetInfo) -> int:
    """The progressive file's size, or an estimate from the peak bitrate of its rendition
    when the sender did not know it: peak overestimates the size, so spans come out
    short (the conservative side for IAB)."""
    if info.download_bytes > 0:
        return info.download_bytes
    if not info.renditions or info.duration <= 0:
        return 0
    rates = sorted(info.renditions.values())
    rate = info.renditions.get("medium") or rates[len(rates) // 2]
    return int(rate * info.duration / 8)


def span_of(rel: str, status: int, nbytes: int, range_header: str | None,
            info: AssetInfo | None) -> Span | None:
    if info is None or status not in (200, 206) or nbytes <= 0:
        return None
    if rel == DOWNLOAD:
        return _download(status, nbytes, range_header, info)
    m = _SEGMENT.fullmatch(rel)
    if not m or info.segment_duration <= 0:
        return None
    rendition, number = m.group(1), int(m.group(2))
    if number < 1:
        return None
    t0 = (number - 1) * info.segment_duration
    t1 = t0 + info.segment_duration
    if m.group(3) is not None:
        if info.part_duration <= 0:
            return None
        t0 += int(m.group(3)) * info.part_duration
        t1 = min(t1, t0 + info.part_duration)
    if info.duration > 0 and not info.live:
        t1 = min(t1, info.duration)
    return Span(t0, t1, rendition) if t1 > t0 else None


def _download(status: int, nbytes: int, range_header: str | None,
              info: AssetInfo) -> Span | None:
    if info.duration <= 0:
        return None
    total = download_size(info)
    if status == 200:
        if total <= 0:
            return Span(0.0, info.duration)  # the whole file, size unknown: all of it
        return Span(0.0, min(1.0, nbytes / total) * info.duration)
    if total <= 0:
        return None
    start = range_start(range_header, total)
    length = min(1.0, nbytes / total) * info.duration
    if start is None:
        return Span(None, length)
    t0 = min(1.0, start / total) * info.duration
    t1 = min(info.duration, t0 + length)
    return Span(t0, t1) if t1 > t0 else None
