"""The segment grid and the parallel-encode chunk plan (pure)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from packager import timeline

RATES = [22050, 44100, 48000]


def test_grid_unit_is_whole_frames_at_every_rate() -> None:
    unit = timeline.grid_unit(RATES)
    for rate in RATES:
        frames = unit * rate / 1024
        assert frames.denominator == 1
    assert unit == Fraction(1024 * 320, 48000)  # 6.8267 s for the default ladder


def test_boundaries_on_grid() -> None:
    assert timeline.segment_boundaries(Fraction(10), Fraction(4)) == [4, 8]
    assert timeline.segment_boundaries(Fraction(3), Fraction(4)) == []


def test_tiny_tail_is_shared_with_previous_segment() -> None:
    # 12.02 s at 4 s would leave a 0.02 s sliver (the encoder priming case)
    cuts = timeline.segment_boundaries(Fraction(1202, 100), Fraction(4))
    assert cuts[:-1] == [4, 8]
    assert cuts[-1] == Fraction(8) + (Fraction(1202, 100) - 8) / 2


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20_000), st.sampled_from([2, 4, 6, 10]))
def test_segments_never_exceed_target_nor_leave_a_sliver(tenths: int, target: int) -> None:
    duration = Fraction(tenths, 10)
    cuts = timeline.segment_boundaries(duration, Fraction(target))
    edges = [Fraction(0), *cuts, duration]
    lengths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    assert all(0 < x <= target for x in lengths)
    if len(lengths) > 1:
        assert lengths[-1] >= Fraction(target) / 4 * Fraction(1, 2)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30_000), st.integers(1, 8))
def test_chunks_cover_the_input_on_frame_boundaries(seconds: int, workers: int) -> None:
    chunks = timeline.plan_chunks(float(seconds), RATES, workers)
    assert chunks[0].start == 0 and chunks[-1].end is None
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.end == b.start
    for c in chunks:
        for rate in RATES:
            assert (c.start * rate / 1024).denominator == 1
            assert (c.preroll * rate / 1024).denominator == 1
    assert len(chunks) <= workers


def test_frame_cuts_align_across_rates() -> None:
    cuts = timeline.segment_boundaries(Fraction(60), Fraction(4))
    per_rate = {r: timeline.frame_cuts(cuts, r) for r in RATES}
    for i, b in enumerate(cuts):
        times = [per_rate[r][i] * 1024 / r for r in RATES]
        assert max(times) - min(times) <= 1024 / 22050  # within one AAC frame
        assert all(abs(t - b) <= 0.5 * 1024 / 22050 for t in times)
