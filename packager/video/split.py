"""Cutting a fragmented MP4 (a moof per keyframe) into an init segment and CMAF segments.

The encoder forced an IDR at the first frame at or after each cut of the shared grid, and
the muxer starts a fragment at every keyframe, so a segment is the run of fragments from
one cut to the next. The file is read box by box: memory holds at most two segments,
whatever the input's length. A trailing segment shorter than `timeline.MIN_TAIL_SHARE`
of the target (only possible when the duration the grid was planned from was off) is
appended to the one before it rather than published as a sliver.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from manifests import boxes, layout
from packager.errors import PackagerError
from packager.timeline import MIN_TAIL_SHARE

_SKIP = frozenset({b"sidx", b"mfra", b"free", b"skip", b"styp", b"prft"})


@dataclass(frozen=True)
class SplitResult:
    segment_count: int
    timescale: int
    sample_count: int
    duration: int  # ticks
    starts: tuple[int, ...]  # tfdt of each segment

    @property
    def seconds(self) -> float:
        return self.duration / self.timescale

    @property
    def frame_rate(self) -> Fraction:
        """Measured: samples over time (a constant-rate stream, so exact)."""
        if not self.duration:
            return Fraction(0)
        return Fraction(self.sample_count * self.timescale, self.duration)


def _read_box(f: BinaryIO) -> tuple[bytes, bytes] | None:
    """(type, whole box bytes) of the next top-level box, None at the end."""
    header = f.read(8)
    if not header:
        return None
    if len(header) < 8:
        raise PackagerError("fragmented MP4 ends inside a box header")
    size, typ = struct.unpack(">I4s", header)
    if size == 1:
        large = f.read(8)
        (size,) = struct.unpack(">Q", large)
        header += large
    elif size == 0:
        rest = f.read()
        return typ, header + rest
    body = f.read(size - len(header))
    if len(body) != size - len(header):
        raise PackagerError(f"fragmented MP4 ends inside a {typ!r} box")
    return typ, header + body


def split(src: Path, out: Path, cuts: list[Fraction], segment_duration: float) -> SplitResult:
    """Write `out`/init.mp4 and seg_00001.m4s... from `src` (blocking; run in a thread)."""
    out.mkdir(parents=True, exist_ok=True)
    init = bytearray()
    track: boxes.TrackInfo | None = None
    cut_ticks: list[float] = []
    tolerance = 0.0
    number = 0
    held: tuple[list[bytes], int] | None = None  # last finished segment, not yet written
    current: list[bytes] = []
    current_dur = 0
    starts: list[int] = []
    samples = total = 0
    next_cut = 0
    moof: bytes | None = None

    def write(parts: list[bytes]) -> None:
        nonlocal number
        number += 1
        with open(out / layout.segment_name(number), "wb") as f:
            for p in parts:
                f.write(p)

    with open(src, "rb") as f:
        while (item := _read_box(f)) is not None:
            typ, data = item
            if typ in _SKIP:
                continue
            if track is None and typ in (b"ftyp", b"moov"):
                init += data
                if typ == b"moov":
                    try:
                        track = boxes.parse_init(bytes(init))
                    except (boxes.BoxError, IndexError, ValueError) as e:
                        raise PackagerError(f"{src.name}: unreadable init ({e})") from None
                    cut_ticks = [float(c * track.timescale) for c in cuts]
                    # half a frame at the highest rate we output: cuts fall on frames
                    tolerance = track.timescale / 120
                continue
            if track is None:
                raise PackagerError(f"{src.name}: {typ!r} before the moov")
            if typ == b"moof":
                moof = data
                continue
            if typ != b"mdat" or moof is None:
                continue  # unknown top-level boxes are not media
            traf = boxes.find(moof, [b"traf"], 8)
            if traf is None:
                raise PackagerError(f"{src.name}: moof without traf")
            tfdt, dur, count, _first, sync, _bytes = boxes.parse_traf(moof, traf, track.defaults)
            new_segment = not current
            if current and sync and next_cut < len(cut_ticks) and (
                    tfdt >= cut_ticks[next_cut] - tolerance):
                new_segment = True
            if new_segment:
                while next_cut < len(cut_ticks) and cut_ticks[next_cut] - tolerance <= tfdt:
                    next_cut += 1
                if current:
                    if held is not None:
                        write(held[0])
                    held = (current, current_dur)
                current = []
                current_dur = 0
                starts.append(tfdt)
            current += [moof, data]
            current_dur += dur
            samples += count
            total += dur
            moof = None
    if track is None:
        raise PackagerError(f"{src.name}: no init segment")
    if not current:
        raise PackagerError(f"{src.name}: no video frames were encoded")
    min_tail = float(MIN_TAIL_SHARE) * segment_duration * track.timescale
    if held is not None and current_dur < min_tail:
        write(held[0] + current)
        starts.pop()
    else:
        if held is not None:
            write(held[0])
        write(current)
    (out / layout.INIT).write_bytes(bytes(init))
    return SplitResult(number, track.timescale, samples, total, tuple(starts))
