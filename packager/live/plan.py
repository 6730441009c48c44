"""The live timing plan (pure): part and segment durations shared by every rung.

A part is cut at the AAC frame nearest each multiple of the nominal part duration,
separately for each rung, so all rungs cut at the same media times (within half a
frame) although their frames differ in length (1024 samples at 22.05, 44.1, 48 kHz).
A part of one rung is therefore `floor` or `ceil` of (part x rate / 1024) frames.

The nominal part is a whole number of frames at the lowest rate, the smallest such
that every part of every rung is at least 85% of the longest (RFC 8216bis §4.4.4.9:
parts other than the last of a segment are at least 85% of PART-TARGET), from a
configured hint; a segment is a whole number of parts whose longest cut stays within
the configured segment duration, which is then the EXT-X-TARGETDURATION of every
playlist of the asset, live and sealed alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

SAMPLES_PER_FRAME = 1024
MIN_PART_SHARE = Fraction(85, 100)


class PlanError(ValueError):
    """No part/segment plan satisfies the rules for these settings."""


def _frames(seconds: Fraction, rate: int) -> Fraction:
    return seconds * rate / SAMPLES_PER_FRAME


def _longest(seconds: Fraction, rate: int) -> Fraction:
    """Longest run of whole frames cut at the frames nearest to multiples of `seconds`."""
    return Fraction(math.ceil(_frames(seconds, rate)) * SAMPLES_PER_FRAME, rate)


def _shortest(seconds: Fraction, rate: int) -> Fraction:
    return Fraction(math.floor(_frames(seconds, rate)) * SAMPLES_PER_FRAME, rate)


@dataclass(frozen=True)
class LivePlan:
    rates: tuple[int, ...]
    part: Fraction  # nominal part duration, seconds
    parts_per_segment: int
    # The first segment is this many parts: a player joining at the start needs one whole
    # segment in the playlist (hls.js refuses a playlist of parts alone, then retries a
    # second later), so the first word is a whole segment as soon as its first part is.
    first_parts: int = 1

    @cached_property
    def segment(self) -> Fraction:
        return self.part * self.parts_per_segment

    @cached_property
    def part_target(self) -> Fraction:
        """PART-TARGET: the longest part any rung can have."""
        return max(_longest(self.part, r) for r in self.rates)

    @cached_property
    def shortest_part(self) -> Fraction:
        return min(_shortest(self.part, r) for r in self.rates)

    @cached_property
    def target_duration(self) -> int:
        """EXT-X-TARGETDURATION: ceiling of the longest segment any rung can have."""
        longest = max(_longest(self.segment, r) for r in self.rates)
        return max(1, math.ceil(longest))

    def part_end_frame(self, rate: int, index: int) -> int:
        """Frame index (exclusive) at which global part `index` (0-based) ends at `rate`."""
        return round(_frames(self.part * (index + 1), rate))

    def part_times(self, index: int) -> tuple[Fraction, Fraction]:
        """Nominal (start, end) media seconds of global part `index`."""
        return self.part * index, self.part * (index + 1)

    def parts_in(self, number: int) -> int:
        """How many parts segment `number` (1-based) has."""
        return self.first_parts if number == 1 else self.parts_per_segment

    def first_part_of(self, number: int) -> int:
        """Global index of the first part of segment `number`."""
        if number <= 1:
            return 0
        return self.first_parts + (number - 2) * self.parts_per_segment

    def locate(self, index: int) -> tuple[int, int]:
        """(segment number, 1-based; part index within it, 0-based) of global part `index`."""
        if index < self.first_parts:
            return 1, index
        seg, k = divmod(index - self.first_parts, self.parts_per_segment)
        return seg + 2, k

    def nominal_segment(self, number: int) -> Fraction:
        return self.part * self.parts_in(number)


def make_plan(rates: list[int] | tuple[int, ...], part_hint: float,
              segment_hint: float, first_parts: int = 1) -> LivePlan:
    """The plan for these sample rates, nearest the hints that satisfies the rules."""
    if not rates:
        raise PlanError("no rungs")
    low = min(rates)
    frame = Fraction(SAMPLES_PER_FRAME, low)
    n = max(1, round(Fraction(part_hint) / frame))
    for frames in range(n, n + 64):
        part = frame * frames
        shortest = min(_shortest(part, r) for r in rates)
        longest = max(_longest(part, r) for r in rates)
        if shortest >= MIN_PART_SHARE * longest:
            break
    else:  # pragma: no cover - a frame count always exists for real rates
        raise PlanError("no part duration keeps every part within 85% of the longest")
    seg_limit = Fraction(segment_hint).limit_denominator(1000)
    per_segment = 0
    k = 1
    while max(_longest(part * k, r) for r in rates) <= seg_limit:
        per_segment = k
        k += 1
    if per_segment < 2:
        raise PlanError(f"live.segment_duration {segment_hint} s holds fewer than two parts "
                        f"of {float(part):.3f} s")
    return LivePlan(tuple(rates), part, per_segment, min(first_parts, per_segment))
