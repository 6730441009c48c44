"""analytics.writer.frames: what crosses the pipe between an origin and its writer."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.events import AssetInfo, Hit, Report
from analytics.writer.frames import HEADER, MAX_FRAME, FrameError, Status, encode, read_frame

INFO = AssetInfo("ep1", "audio", 40.0, 2.0, 0, {"low": 64000})


def test_frames_round_trip_in_order_and_share_the_asset_info() -> None:
    hits = [(1.0 + i, "ep1", f"v/x/low/seg_{i:05d}.m4s", "GET", 200, 100, None, "203.0.113.1",
             "ua", None, "origin", INFO) for i in range(300)]
    reports = [(5.0, "203.0.113.1", "ua", 'sid="s",sta=p', None)]
    stream = io.BytesIO(encode(hits, reports) + encode(hits[:1], []))
    first = read_frame(stream)
    assert first is not None
    got_hits, got_reports = first
    assert [Hit(*h) for h in got_hits] == [Hit(*h) for h in hits]
    assert [Report(*r) for r in got_reports] == [Report(*r) for r in reports]
    # One AssetInfo object for all of them (pickled once per frame, not once per hit).
    assert len({id(h[-1]) for h in got_hits}) == 1
    second = read_frame(stream)
    assert second is not None and len(second[0]) == 1 and second[1] == []
    assert read_frame(stream) is None  # the end


@given(st.integers(min_value=1, max_value=200))
def test_a_stream_cut_inside_a_frame_is_an_error_not_an_end(cut: int) -> None:
    data = encode([(1.0, "a", "master.m3u8", "GET", 200, 1, None, "::1", "", None, "origin",
                    None)], [])
    cut = min(cut, len(data) - 1)
    with pytest.raises(FrameError):
        read_frame(io.BytesIO(data[:cut]))


def test_a_length_past_the_bound_or_a_foreign_body_is_refused() -> None:
    with pytest.raises(FrameError):
        read_frame(io.BytesIO(HEADER.pack(MAX_FRAME + 1) + b"x"))
    import pickle
    body = pickle.dumps(["not", "a", "batch"])
    with pytest.raises(FrameError):
        read_frame(io.BytesIO(HEADER.pack(len(body)) + body))


def test_status_lines_round_trip_and_ignore_unknown_keys() -> None:
    status = Status(received=10, accepted=9, full=1, settled=10, written=9, dropped=1,
                    errors=0, rejected=0, queued=0, down=True)
    assert Status.parse(status.line()) == status
    assert status.line().endswith(b"\n") and b"\n" not in status.line()[:-1]
    assert Status.parse(b'{"written": 3, "newer": 1}') == Status(written=3)
    with pytest.raises(ValueError):
        Status.parse(b"[1, 2]")
