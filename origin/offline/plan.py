"""The byte layout of an offline bundle: a stored (uncompressed) ZIP, planned whole
before its first byte is sent. Pure: no I/O.

A plan is a list of pieces, each either literal bytes (headers, small members) or a
`Span` of a store object. Its size, and a strong validator over everything that decides
its bytes, are known from the plan alone, so the origin can answer with a
Content-Length, an ETag and any byte range without having read a byte of media, and the
same request gives the same bytes every time.

Why stored and not deflated: audio and video are already compressed (deflate would spend
CPU to win nothing), and only stored members let every byte offset be computed in
advance. The CRC-32 each header carries must be known beforehand, which is why the
caller brings it (origin.offline.checksums computes it once per immutable object).

Format (APPNOTE.TXT 6.3.x): local header + data per member, then the central directory,
then (when any size, offset or count passes the classic limits) the ZIP64 end record and
locator, then the end record. ZIP64 is used per member only where needed, so a small
bundle is a classic ZIP that every unzipper reads, and a bundle past 4 GiB still works.
Every attribute is fixed (version made by Unix, mode 0644, DOS time from the asset), so
nothing about the machine or the moment leaks into the bytes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

LIMIT32 = 0xFFFFFFFF
LIMIT16 = 0xFFFF
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
_END = struct.Struct("<IHHHHIIH")  # 22 bytes
_END64 = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_LOCATOR64 = struct.Struct("<IIQI")  # 20 bytes
_SIG_LOCAL, _SIG_CENTRAL = 0x04034B50, 0x02014B50
_SIG_END, _SIG_END64, _SIG_LOCATOR64 = 0x06054B50, 0x06064B50, 0x07064B50
_ZIP64_EXTRA = 0x0001
_VERSION_STORED = 10  # 1.0: stored members
_VERSION_ZIP64 = 45  # 4.5: ZIP64 extensions
_MADE_BY = (3 << 8) | _VERSION_ZIP64  # Unix, so the external attributes are a mode
_MODE = 0o100644  # a regular file, rw-r--r--
_UTF8 = 0x0800  # general purpose flag bit 11: the name is UTF-8
# DOS dates cover 1980..2107 (years since 1980 in seven bits).
DOS_MIN = dt.datetime(1980, 1, 1, tzinfo=dt.UTC)
DOS_MAX = dt.datetime(2107, 12, 31, 23, 59, 58, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes [offset, offset + length) of the store object `key`."""

    key: str
    offset: int
    length: int


Piece = bytes | Span


@dataclass(frozen=True, slots=True)
class Member:
    """One file of the bundle: its name, size, CRC-32, DOS (time, date), and its bytes
    (literal, or the concatenation of store spans)."""

    name: str
    size: int
    crc32: int
    dos: tuple[int, int]
    content: bytes | tuple[Span, ...]

    def __post_init__(self) -> None:
        if isinstance(self.content, bytes):
            given = len(self.content)
        else:
            given = sum(s.length for s in self.content)
        if given != self.size:
            raise ValueError(f"{self.name}: content has {given} bytes, size says {self.size}")
        if not 0 <= self.crc32 <= LIMIT32:
            raise ValueError(f"{self.name}: crc32 out of range")
        if not self.name or self.name.startswith("/") or "\\" in self.name \
                or ".." in self.name.split("/"):
            raise ValueError(f"unsafe member name {self.name!r}")


@dataclass(frozen=True, slots=True)
class Plan:
    """The bundle's bytes: `pieces` laid end to end from offset 0 (`starts[i]` is where
    piece i begins), `size` in all, and `etag`, a strong validator of the whole."""

    pieces: tuple[Piece, ...]
    starts: tuple[int, ...]
    size: int
    etag: str
    zip64: bool

    def slices(self, start: int, end: int) -> Iterator[tuple[Piece, int, int]]:
        """(piece, lo, hi) for bytes [start, end) of the bundle: the parts of the pieces
        that cover them, lo and hi relative to each piece, in order."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range {start}-{end} outside 0-{self.size}")
        if start == end:
            return
        i = bisect.bisect_right(self.starts, start) - 1
        while i < len(self.pieces) and self.starts[i] < end:
            piece = self.pieces[i]
            p0 = self.starts[i]
            length = len(piece) if isinstance(piece, bytes) else piece.length
            lo, hi = max(start - p0, 0), min(end - p0, length)
            if hi > lo:
                yield piece, lo, hi
            i += 1


def dos_datetime(rfc3339: str | None) -> tuple[int, int]:
    """(DOS time, DOS date) of an RFC 3339 UTC instant, clamped to what DOS can say; an
    absent or unreadable value gives 1980-01-01 00:00:00 (the DOS epoch)."""
    when = DOS_MIN
    if rfc3339:
        try:
            parsed = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            when = min(max(parsed.astimezone(dt.UTC), DOS_MIN), DOS_MAX)
    time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    return time, date


def _name_bytes(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _UTF8


def local_header(m: Member) -> bytes:
    """The local file header of `m` (ZIP64 extra with both sizes when the size needs it:
    APPNOTE 4.5.3 requires both in a local header)."""
    name, flags = _name_bytes(m.name)
    big = m.size >= LIMIT32
    extra = struct.pack("<HHQQ", _ZIP64_EXTRA, 16, m.size, m.size) if big else b""
    size32 = LIMIT32 if big else m.size
    version = _VERSION_ZIP64 if big else _VERSION_STORED
    time, date = m.dos
    return _LOCAL.pack(_SIG_LOCAL, version, flags, 0, time, date, m.crc32, size32, size32,
                       len(name), len(extra)) + name + extra


def central_header(m: Member, offset: int) -> bytes:
    """The central directory entry of `m`, whose local header is at `offset`. The ZIP64
    extra holds, in APPNOTE order, only the fields the classic entry cannot."""
    name, flags = _name_bytes(m.name)
    big, far = m.size >= LIMIT32, offset >= LIMIT32
    fields = ([m.size, m.size] if big else []) + ([offset] if far else [])
    extra = (struct.pack(f"<HH{len(fields)}Q", _ZIP64_EXTRA, 8 * len(fields), *fields)
             if fields else b"")
    version = _VERSION_ZIP64 if big else _VERSION_STORED
    # The version needed must match the local header's; a far offset alone needs 4.5 to
    # read the central entry, which a reader checks there.
    needed = _VERSION_ZIP64 if (big or far) else version
    size32 = LIMIT32 if big else m.size
    time, date = m.dos
    return _CENTRAL.pack(_SIG_CENTRAL, _MADE_BY, needed, flags, 0, time, date, m.crc32,
                         size32, size32, len(name), len(extra), 0, 0, 0, _MODE << 16,
                         LIMIT32 if far else offset) + name + extra


def end_records(count: int, cd_offset: int, cd_size: int) -> tuple[bytes, bool]:
    """The end of central directory (preceded by the ZIP64 end record and locator when a
    count, size or offset passes the classic fields), and whether ZIP64 was needed."""
    zip64 = count >= LIMIT16 or cd_offset >= LIMIT32 or cd_size >= LIMIT32
    out = b""
    if zip64:
        end64_at = cd_offset + cd_size
        out += _END64.pack(_SIG_END64, _END64.size - 12, _MADE_BY, _VERSION_ZIP64, 0, 0,
                           count, count, cd_size, cd_offset)
        out += _LOCATOR64.pack(_SIG_LOCATOR64, 0, end64_at, 1)
    n16 = min(count, LIMIT16)
    out += _END.pack(_SIG_END, 0, 0, n16, n16, min(cd_size, LIMIT32),
                     min(cd_offset, LIMIT32), 0)
    return out, zip64


def plan(members: Sequence[Member]) -> Plan:
    """The whole bundle. Member names must be unique."""
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ValueError("duplicate member names")
    pieces: list[Piece] = []
    pending = bytearray()  # literal bytes not yet closed into a piece
    offset = 0
    central = bytearray()

    def flush() -> None:
        if pending:
            pieces.append(bytes(pending))
            pending.clear()

    for m in members:
        head = local_header(m)
        central += central_header(m, offset)
        pending += head
        if isinstance(m.content, bytes):
            pending += m.content
        else:
            for span in m.content:
                if span.length:
                    flush()
                    pieces.append(span)
        offset += len(head) + m.size
    end, zip64 = end_records(len(members), offset, len(central))
    pending += central
    pending += end
    flush()
    starts: list[int] = []
    pos = 0
    for piece in pieces:
        starts.append(pos)
        pos += len(piece) if isinstance(piece, bytes) else piece.length
    zip64 = zip64 or any(m.size >= LIMIT32 for m in members) or offset >= LIMIT32
    return Plan(tuple(pieces), tuple(starts), pos, _etag(pieces), zip64)


def _etag(pieces: Sequence[Piece]) -> str:
    """A strong validator: a hash of every literal byte (headers carry each member's
    size and CRC-32) and of every span's key and extent (keys name immutable versions)."""
    h = hashlib.sha256()
    for piece in pieces:
        if isinstance(piece, bytes):
            h.update(b"L%d:" % len(piece))
            h.update(piece)
        else:
            key = piece.key.encode()
            h.update(b"S%d:%s:%d:%d;" % (len(key), key, piece.offset, piece.length))
    return f'"zip-{h.hexdigest()[:40]}"'
