"""Parsing the `Range` request header (RFC 9110 §14), as a pure function.

The result is one of three things, and the caller decides the status from it:

- ``None``: answer with the whole representation (200). That is the case when
  there is no Range header, when its unit is not ``bytes``, when it does not
  parse (RFC 9110 §14.2: "A server MUST ignore a Range header field received
  with a request method that is unrecognized ... An origin server MUST ignore a
  Range header field that contains a range unit it does not understand", and a
  syntactically invalid range-set lets the server ignore the field), and when it
  asks for several ranges: RFC 9110 §14.2 allows a server to ignore Range, and
  serving the whole object is simpler for every client than multipart/byteranges.
- a :class:`ByteRange`: answer 206 with exactly those bytes.
- :class:`RangeNotSatisfiable` raised: answer 416 with ``Content-Range: bytes */LEN``
  (RFC 9110 §15.5.17).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A single range-spec: int-range "first-last" / "first-", or suffix-range "-N".
# Only ASCII digits: int() would also accept "+1", " 1", "1_0" and non-ASCII digits.
_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_MAX_HEADER = 1024  # longer headers are not worth parsing: ignore them


class RangeNotSatisfiable(Exception):
    """The single range requested lies wholly outside the representation (RFC 9110 §14.1.1)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for a representation of {size} bytes")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes [start, end) of a representation of `size` bytes; end is exclusive."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        # RFC 9110 §14.4: last-pos is inclusive.
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Interpret a Range header against a representation of `size` bytes.

    Returns None to serve the whole representation, a ByteRange to serve part
    of it, or raises RangeNotSatisfiable.
    """
    if not header or len(header) > _MAX_HEADER:
        return None
    unit, eq, range_set = header.partition("=")
    # RFC 9110 §14.1: range units are compared case-insensitively.
    if not eq or unit.strip().lower() != "bytes":
        return None
    # RFC 9110 §5.6.1: a list may contain empty elements, which are ignored.
    specs = [s.strip() for s in range_set.split(",")]
    specs = [s for s in specs if s]
    if len(specs) != 1:
        # No range, or several: RFC 9110 §14.2 lets the server ignore Range.
        return None
    m = _SPEC.fullmatch(specs[0])
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        if last:
            end_incl = int(last)
            if end_incl < start:
                # RFC 9110 §14.1.1: such a range-spec is invalid -> the field is ignored.
                return None
        else:
            end_incl = size - 1
        if start >= size:
            # RFC 9110 §14.1.1: an int-range is satisfiable only if first-pos < length.
            raise RangeNotSatisfiable(size)
        return ByteRange(start, min(end_incl, size - 1) + 1, size)
    if not last:
        return None  # "bytes=-": neither first-pos nor suffix-length
    suffix = int(last)
    if suffix == 0 or size == 0:
        # RFC 9110 §14.1.1: a suffix-range is satisfiable only with a non-zero length;
        # nothing of an empty representation can be selected.
        raise RangeNotSatisfiable(size)
    # "If the selected representation is shorter than the specified suffix-length,
    # the entire representation is used."
    return ByteRange(max(size - suffix, 0), size, size)
