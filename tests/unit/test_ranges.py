"""The pure Range parser (origin.http.ranges) against RFC 9110 §14."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from origin.http.ranges import ByteRange, RangeNotSatisfiable, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 1)),
        ("bytes=0-499", (0, 500)),
        ("bytes=999-999", (999, 1000)),  # the last byte
        ("bytes=-1", (999, 1000)),  # suffix: the last byte
        ("bytes=-500", (500, 1000)),
        ("bytes=-5000", (0, 1000)),  # suffix longer than the object: all of it
        ("bytes=5-", (5, 1000)),
        ("bytes=0-", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),  # last-pos past the end is clamped
        ("BYTES=1-2", (1, 3)),  # unit is case-insensitive
        (" bytes = 1-2 ", (1, 3)),
        ("bytes=1-2,", (1, 3)),  # empty list elements are ignored (RFC 9110 §5.6.1)
        ("bytes=, 1-2", (1, 3)),
    ],
)
def test_satisfiable(header: str, expected: tuple[int, int]) -> None:
    r = parse_range(header, SIZE)
    assert r is not None
    assert (r.start, r.end) == expected
    assert r.content_range == f"bytes {expected[0]}-{expected[1] - 1}/{SIZE}"
    assert r.length == expected[1] - expected[0]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "items=0-1",  # unknown unit
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=10-5",  # last < first: invalid, the field is ignored
        "bytes=a-b",
        "bytes=+1-2",
        "bytes=1_0-20",
        "bytes=١-٢",  # non-ASCII digits
        "bytes=0-1,5-6",  # several ranges: served whole (RFC 9110 §14.2 allows ignoring)
        "bytes=0-1, -5",
        "bytes=0-1;x",
        "bytes=" + "1" * 2000 + "-",
    ],
)
def test_ignored(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=5000-5001",
                                    "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, SIZE)
    assert info.value.content_range == f"bytes */{SIZE}"


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=0-0", "bytes=-1"])
def test_empty_representation_has_no_satisfiable_range(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 0)


_positions = st.integers(min_value=0, max_value=10**7).map(str) | st.just("")
_spec = st.builds(lambda a, b: f"{a}-{b}", _positions, _positions)
_headers = (
    st.builds(lambda unit, specs: f"{unit}={','.join(specs)}",
              st.sampled_from(["bytes", "Bytes", "items", "bytes "]),
              st.lists(_spec, min_size=0, max_size=3))
    | st.text(max_size=40)
)


@given(size=st.integers(min_value=0, max_value=10**7), header=_headers)
def test_any_206_range_lies_inside_the_object(size: int, header: str) -> None:
    try:
        r = parse_range(header, size)
    except RangeNotSatisfiable as e:
        assert e.size == size
        return
    if r is not None:
        assert isinstance(r, ByteRange)
        assert 0 <= r.start <= r.end - 1 < size
        assert r.size == size


@given(size=st.integers(min_value=1, max_value=10**6),
       first=st.integers(min_value=0, max_value=10**6),
       last=st.integers(min_value=0, max_value=10**6))
def test_closed_range_matches_slicing(size: int, first: int, last: int) -> None:
    data = range(size)
    header = f"bytes={first}-{last}"
    if last < first:
        assert parse_range(header, size) is None
    elif first >= size:
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, size)
    else:
        r = parse_range(header, size)
        assert r is not None
        assert data[r.start:r.end] == data[first:last + 1]
