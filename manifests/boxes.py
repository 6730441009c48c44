"""Reading ISO BMFF (MP4) boxes out of bytes: just what the packager measures.

Pure functions over `bytes`; the packager does the file I/O. References are to
ISO/IEC 14496-12 (ISOBMFF) section numbers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf",
                        b"mvex", b"edts", b"dinf", b"udta"})


class BoxError(ValueError):
    """The bytes are not well-formed ISO BMFF."""


@dataclass(frozen=True)
class Box:
    type: bytes
    offset: int  # of the box header within the buffer
    size: int  # whole box, header included
    header: int  # header length (8, or 16 with a 64-bit size)

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.size


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid end to end in data[start:end] (§4.2)."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if end - pos < 8:
            raise BoxError(f"truncated box header at {pos}")
        size, typ = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise BoxError(f"truncated large box header at {pos}")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:  # box extends to the end of the enclosing space
            size = end - pos
        if size < header or pos + size > end:
            raise BoxError(f"box {typ!r} at {pos} has bad size {size}")
        yield Box(typ, pos, size, header)
        pos += size


def find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> Box | None:
    """The first box along a path of types, e.g. [b'moov', b'trak', b'mdia', b'mdhd']."""
    for box in iter_boxes(data, start, end):
        if box.type == path[0]:
            if len(path) == 1:
                return box
            return find(data, path[1:], box.body, box.end)
    return None


def _full_box(data: bytes, box: Box) -> tuple[int, int, int]:
    """(version, flags, offset of the payload after them) of a FullBox (§4.2)."""
    vf = struct.unpack_from(">I", data, box.body)[0]
    return vf >> 24, vf & 0xFFFFFF, box.body + 4


# --- fragments (moof/mdat) ------------------------------------------------------------------

@dataclass(frozen=True)
class Fragment:
    """One moof+mdat pair of one track."""

    offset: int  # of the moof within the buffer
    moof_size: int
    mdat_offset: int
    mdat_size: int
    base_decode_time: int  # tfdt
    duration: int  # sum of sample durations, in the track timescale
    sample_count: int
    first_sample_size: int
    first_is_sync: bool
    sample_sizes_total: int

    @property
    def end(self) -> int:
        return self.mdat_offset + self.mdat_size


@dataclass(frozen=True)
class TrackDefaults:
    """Defaults for fragments from the init segment's trex (§8.8.3)."""

    track_id: int = 1
    sample_duration: int = 0
    sample_size: int = 0
    sample_flags: int = 0


def _is_sync(flags: int) -> bool:
    # sample_is_non_sync_sample is bit 16 of the sample flags (§8.8.3.1)
    return not (flags >> 16) & 1


def parse_traf(data: bytes, traf: Box, defaults: TrackDefaults) -> tuple[int, int, int, int, bool, int]:
    """(tfdt, duration, count, first sample size, first is sync, total sample bytes) of a traf."""
    default_duration = defaults.sample_duration
    default_size = defaults.sample_size
    default_flags = defaults.sample_flags
    tfdt = 0
    duration = count = total = 0
    first_size = -1
    first_sync = True
    for box in iter_boxes(data, traf.body, traf.end):
        if box.type == b"tfhd":  # §8.8.7
            _v, flags, pos = _full_box(data, box)
            pos += 4  # track_ID
            if flags & 0x01:
                pos += 8  # base_data_offset
            if flags & 0x02:
                pos += 4  # sample_description_index
            if flags & 0x08:
                (default_duration,) = struct.unpack_from(">I", data, pos)
                pos += 4
            if flags & 0x10:
                (default_size,) = struct.unpack_from(">I", data, pos)
                pos += 4
            if flags & 0x20:
                (default_flags,) = struct.unpack_from(">I", data, pos)
        elif box.type == b"tfdt":  # §8.8.12
            version, _f, pos = _full_box(data, box)
            fmt = ">Q" if version == 1 else ">I"
            (tfdt,) = struct.unpack_from(fmt, data, pos)
        elif box.type == b"trun":  # §8.8.8
            _v, flags, pos = _full_box(data, box)
            (n,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if flags & 0x001:
                pos += 4  # data_offset
            first_flags = None
            if flags & 0x004:
                (first_flags,) = struct.unpack_from(">I", data, pos)
                pos += 4
            for i in range(n):
                d = default_duration
                s = default_size
                f = default_flags
                if flags & 0x100:
                    (d,) = struct.unpack_from(">I", data, pos)
                    pos += 4
                if flags & 0x200:
                    (s,) = struct.unpack_from(">I", data, pos)
                    pos += 4
                if flags & 0x400:
                    (f,) = struct.unpack_from(">I", data, pos)
                    pos += 4
                if flags & 0x800:
                    pos += 4  # composition time offset
                if i == 0 and first_flags is not None:
                    f = first_flags
                if count == 0 and i == 0:
                    first_size = s
                    first_sync = _is_sync(f)
                duration += d
                total += s
            count += n
    return tfdt, duration, count, first_size, first_sync, total


def parse_fragments(data: bytes, defaults: TrackDefaults) -> list[Fragment]:
    """Every moof+mdat pair in a media segment, single-track (as CMAF requires)."""
    out: list[Fragment] = []
    pending: tuple[Box, tuple[int, int, int, int, bool, int]] | None = None
    for box in iter_boxes(data):
        if box.type == b"moof":
            traf = find(data, [b"traf"], box.body, box.end)
            if traf is None:
                raise BoxError("moof without traf")
            pending = (box, parse_traf(data, traf, defaults))
        elif box.type == b"mdat":
            if pending is None:
                raise BoxError("mdat before moof")
            moof, (tfdt, dur, n, first, sync, total) = pending
            out.append(Fragment(moof.offset, moof.size, box.offset, box.size, tfdt, dur, n,
                                first, sync, total))
            pending = None
    if pending is not None:
        raise BoxError("moof without mdat")
    return out


# --- init segments ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TrackInfo:
    handler: str  # "soun" or "vide"
    timescale: int
    codecs: str
    defaults: TrackDefaults
    sample_rate: int = 0
    channels: int = 0
    width: int = 0
    height: int = 0


def parse_init(data: bytes) -> TrackInfo:
    """Timescale, handler, codec string and fragment defaults of a single-track init segment."""
    trak = find(data, [b"moov", b"trak"])
    if trak is None:
        raise BoxError("init segment has no moov/trak")
    mdhd = find(data, [b"mdia", b"mdhd"], trak.body, trak.end)
    hdlr = find(data, [b"mdia", b"hdlr"], trak.body, trak.end)
    stsd = find(data, [b"mdia", b"minf", b"stbl", b"stsd"], trak.body, trak.end)
    if mdhd is None or hdlr is None or stsd is None:
        raise BoxError("init segment lacks mdhd, hdlr or stsd")
    version, _f, pos = _full_box(data, mdhd)  # §8.4.2
    timescale = struct.unpack_from(">I", data, pos + (16 if version == 1 else 8))[0]
    handler = data[hdlr.body + 8: hdlr.body + 12].decode("ascii", "replace")
    defaults = TrackDefaults()
    trex = find(data, [b"moov", b"mvex", b"trex"])
    if trex is not None:  # §8.8.3
        _v, _f, pos = _full_box(data, trex)
        tid, _sdi, dd, ds, df = struct.unpack_from(">IIIII", data, pos)
        defaults = TrackDefaults(tid, dd, ds, df)
    from manifests.codecs import sample_entry_info  # local: codecs imports this module

    entry = next(iter_boxes(data, stsd.body + 8, stsd.end))  # first sample entry (§8.5.2)
    info = sample_entry_info(data, entry)
    return TrackInfo(handler=handler, timescale=timescale, defaults=defaults, **info)
