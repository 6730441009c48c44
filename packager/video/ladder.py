"""Planning a video ladder (pure): output sizes, frame rate and the keyframe grid.

Sizes are computed from the *displayed* picture: ffmpeg autorotates while decoding, so a
phone video stored as 1920x1080 with a 90° display matrix comes out of the decoder as
1080x1920, and that is what the ladder is cut from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packager.probe import StreamInfo
    from settings import VideoRung

MAX_FRAME_RATE = Fraction(60)
DEFAULT_FRAME_RATE = Fraction(25)
# Rates that a measured average within 1% of them is snapped to (NTSC rates included).
STANDARD_RATES = tuple(Fraction(n, d) for n, d in (
    (24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1),
    (60000, 1001), (60, 1)))
MIN_BITRATE = 64_000


@dataclass(frozen=True)
class VideoOutput:
    """One rendition of the ladder as it will be encoded."""

    id: str
    width: int
    height: int
    bitrate: int  # bits per second (x264 -b:v)
    maxrate: int  # VBV maximum rate
    bufsize: int  # VBV buffer: two seconds at the maximum rate
    profile: str  # baseline | main | high

    @property
    def b_frames(self) -> bool:
        return self.profile != "baseline"


def even(x: float) -> int:
    """The nearest even integer, at least 2 (H.264 4:2:0 needs even dimensions)."""
    return max(2, 2 * round(x / 2))


def display_size(v: StreamInfo) -> tuple[int, int]:
    """(width, height) as displayed: swapped for a quarter-turn rotation."""
    if v.rotation % 180 == 90:
        return v.height, v.width
    return v.width, v.height


def plan_ladder(rungs: tuple[VideoRung, ...] | list[VideoRung], width: int, height: int,
                ) -> list[VideoOutput]:
    """The configured rungs that fit the source, tallest first, never upscaled.

    A rung's `height` is the size of the picture's *short side*: "720p" is 1280x720 for a
    landscape source and 720x1280 for a portrait one, so a portrait phone video gets the
    same ladder (and the same bitrates) as its landscape twin. The long side follows the
    source's aspect ratio, rounded to even. Rungs whose short side exceeds the source's
    are dropped; when none is left, one rung at the source's own size (even) remains,
    with the lowest rung's settings and its bitrate scaled down by the pixel count.
    """
    if width <= 0 or height <= 0:
        raise ValueError("source has no size")
    short, long_ = min(width, height), max(width, height)
    portrait = height > width
    aspect = long_ / short

    def output(rung: VideoRung, short_side: int, bitrate: int) -> VideoOutput:
        long_side = even(short_side * aspect)
        w, h = (short_side, long_side) if portrait else (long_side, short_side)
        maxrate = int(bitrate * rung.maxrate_factor)
        return VideoOutput(rung.id, w, h, bitrate, maxrate, 2 * maxrate, rung.profile)

    ordered = sorted(rungs, key=lambda r: r.height, reverse=True)
    kept = [output(r, even(r.height), r.bitrate) for r in ordered if r.height <= short]
    if kept or not ordered:
        return _unique_sizes(kept)
    lowest = ordered[-1]
    side = max(2, short - short % 2)
    scale = (side * even(side * aspect)) / (lowest.height * even(lowest.height * aspect))
    bitrate = max(MIN_BITRATE, int(lowest.bitrate * scale))
    out = output(lowest, side, bitrate)
    return [VideoOutput(f"{side}p", out.width, out.height, out.bitrate, out.maxrate,
                        out.bufsize, out.profile)]


def _unique_sizes(outputs: list[VideoOutput]) -> list[VideoOutput]:
    """Drop a rung that would repeat the size of a taller one (two rungs of one height)."""
    seen: set[tuple[int, int]] = set()
    out = []
    for o in outputs:
        if (o.width, o.height) not in seen:
            seen.add((o.width, o.height))
            out.append(o)
    return out


def output_frame_rate(measured: float) -> Fraction:
    """The constant output rate: the source's average rate, snapped to a standard rate
    when within 1% of one, else to a whole number; capped at 60, 25 when unknown."""
    if not measured or not math.isfinite(measured) or measured <= 0:
        return DEFAULT_FRAME_RATE
    if measured >= float(MAX_FRAME_RATE):
        return MAX_FRAME_RATE
    nearest = min(STANDARD_RATES, key=lambda r: abs(measured - float(r)))
    if abs(measured - float(nearest)) <= 0.01 * float(nearest):
        return nearest
    if measured < 1:
        return Fraction(measured).limit_denominator(100)
    return Fraction(round(measured))


def keyframe_expr(cuts: list[Fraction], segment: Fraction, fps: Fraction) -> str:
    """A `-force_key_frames expr:` forcing an IDR on the first frame at or after each cut.

    `cuts` are `timeline.segment_boundaries`: multiples of the segment duration, except
    that the last one may be pulled in so no trailing segment is a sliver. The
    expression sees `n_forced` (keyframes forced so far) and `t` (the frame's time); a
    tolerance of a microsecond absorbs floating-point noise in `t` (n * 1/fps as a double)
    and is far below any frame's distance from a cut. A list of times
    would be simpler but too long for argv on a four-hour input.
    """
    eps = "0.000001"
    if not cuts:
        return "expr:eq(n_forced,0)"
    k = len(cuts)
    regular = k - 1 if cuts[-1] != segment * k else k
    last = f"{float(cuts[-1]):.6f}"
    # n_forced = i forces the i-th cut (i*segment for i < regular); 0 forces frame 0.
    expr = (f"if(lte(n_forced,{regular}),gte(t+{eps},n_forced*{float(segment):.6f}),"
            f"if(eq(n_forced,{k}),gte(t+{eps},{last}),0))")
    return "expr:" + expr


def gop_frames(segment: float, fps: Fraction) -> int:
    """x264's maximum GOP: one frame longer than a segment, so x264 never places an IDR
    of its own before the forced one at the next segment boundary."""
    return math.ceil(segment * float(fps)) + 1
