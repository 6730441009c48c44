"""Pure timing decisions: the segment grid shared by renditions, and parallel encode chunks.

Times are exact `Fraction`s of a second so that frame arithmetic never drifts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

SAMPLES_PER_FRAME = 1024
# A last segment shorter than this share of the target is folded into the one before it
# by splitting the two evenly, so no rendition ends on a sliver of a segment.
MIN_TAIL_SHARE = Fraction(1, 4)


def segment_boundaries(duration: Fraction, target: Fraction) -> list[Fraction]:
    """Interior cut points, in seconds, shared by every rendition.

    Cuts fall on the grid k * target; when what would be left after the last cut is
    under MIN_TAIL_SHARE of a target, the last two segments share the remainder evenly
    (both stay at most one target long).
    """
    if duration <= target:
        return []
    n = math.ceil(duration / target)
    cuts = [target * k for k in range(1, n)]
    tail = duration - cuts[-1]
    if tail < target * MIN_TAIL_SHARE:
        before = cuts[-2] if len(cuts) >= 2 else Fraction(0)
        cuts[-1] = before + (duration - before) / 2
    return cuts


def frame_cuts(boundaries: list[Fraction], sample_rate: int) -> list[int]:
    """Frame index at which each segment starts after the first, for one rendition:
    the frame boundary nearest each cut point, so renditions align within half a frame."""
    out: list[int] = []
    for b in boundaries:
        idx = round(b * sample_rate / SAMPLES_PER_FRAME)
        if not out or idx > out[-1]:
            out.append(idx)
    return out


def grid_unit(sample_rates: list[int]) -> Fraction:
    """Shortest time that is a whole number of AAC frames at every sample rate."""
    unit = Fraction(0)
    for rate in sample_rates:
        frame = Fraction(SAMPLES_PER_FRAME, rate)
        if unit == 0:
            unit = frame
        else:  # lcm of two fractions a/b, c/d in lowest terms = lcm(a, c) / gcd(b, d)
            unit = Fraction(math.lcm(unit.numerator, frame.numerator),
                            math.gcd(unit.denominator, frame.denominator))
    return unit


@dataclass(frozen=True)
class Chunk:
    """A slice of the input encoded by one ffmpeg process.

    The encoder sees [start - preroll, end + postroll) and the frames of the pre- and
    post-roll are dropped, so the encoders of neighbouring chunks both saw real signal
    around the seam and the kept frames lie on the same frame grid as one long encode.
    """

    index: int
    start: Fraction
    end: Fraction | None  # None: to the end of the input
    preroll: Fraction
    postroll: Fraction

    @property
    def input_start(self) -> Fraction:
        return self.start - self.preroll

    @property
    def input_length(self) -> Fraction | None:
        return None if self.end is None else self.end + self.postroll - self.input_start

    def frames_to_skip(self, sample_rate: int) -> int:
        """Encoder priming (one frame) plus the pre-roll."""
        return 1 + int(self.preroll * sample_rate / SAMPLES_PER_FRAME)

    def frames_to_keep(self, sample_rate: int) -> int | None:
        if self.end is None:
            return None
        return int((self.end - self.start) * sample_rate / SAMPLES_PER_FRAME)


def plan_chunks(duration: float, sample_rates: list[int], workers: int,
                min_chunk: float = 120.0) -> list[Chunk]:
    """Split the input into at most `workers` chunks of at least `min_chunk` seconds,
    cut on multiples of the grid unit (so every rendition's frames line up at the seam)."""
    unit = grid_unit(sample_rates)
    count = max(1, min(workers, int(duration // min_chunk)))
    if count == 1 or unit * 4 > Fraction(duration) / count:
        return [Chunk(0, Fraction(0), None, Fraction(0), Fraction(0))]
    step_units = math.floor(Fraction(duration) / count / unit)
    chunks = []
    for i in range(count):
        start = unit * step_units * i
        end = None if i == count - 1 else unit * step_units * (i + 1)
        pre = unit if i > 0 else Fraction(0)
        post = unit if end is not None else Fraction(0)
        chunks.append(Chunk(i, start, end, pre, post))
    return chunks
