"""Media time spans of responses, and AssetInfo from an asset record."""

from __future__ import annotations

import pytest

from analytics.events import AssetInfo
from analytics.spans import Span, download_size, range_start, rendition_of, span_of

EP = AssetInfo("ep", "audio", 10.5, 4.0, 1_050_000, {"low": 48_000, "medium": 96_000})
LIVE = AssetInfo("lv", "audio", 0.0, 4.0, 0, {"a": 64_000}, part_duration=1.0, live=True)


@pytest.mark.parametrize(("rel", "want"), [
    ("v/abc1/low/seg_00001.m4s", Span(0.0, 4.0, "low")),
    ("v/abc1/medium/seg_00002.m4s", Span(4.0, 8.0, "medium")),
    ("v/abc1/low/seg_00003.m4s", Span(8.0, 10.5, "low")),  # clipped to the duration
    ("v/abc1/low/seg_00004.m4s", None),  # past the end
    ("v/abc1/low/seg_00000.m4s", None),
    ("v/abc1/low/init.mp4", None),
    ("v/abc1/low/index.m3u8", None),
    ("master.m3u8", None),
    ("v/abc1/subs/seg_00001.vtt", None),
    ("v/abc1/download.m4a", None),
])
def test_segments(rel: str, want: Span | None) -> None:
    assert span_of(rel, 200, 1000, None, EP) == want


def test_parts_of_a_live_asset() -> None:
    assert span_of("v/x1/a/seg_00003.2.m4s", 200, 100, None, LIVE) == Span(10.0, 11.0, "a")
    assert span_of("v/x1/a/seg_00003.m4s", 200, 100, None, LIVE) == Span(8.0, 12.0, "a")
    no_parts = AssetInfo("x", "audio", 0.0, 4.0, 0, live=True)
    assert span_of("v/x1/a/seg_00003.2.m4s", 200, 100, None, no_parts) is None


def test_progressive_download() -> None:
    # 100,000 bytes a second
    assert span_of("download", 200, 1_050_000, None, EP) == Span(0.0, 10.5)
    assert span_of("download", 200, 525_000, None, EP) == Span(0.0, 5.25)  # client left
    assert span_of("download", 206, 200_000, "bytes=300000-499999", EP) == Span(3.0, 5.0)
    assert span_of("download", 206, 200_000, "bytes=300000-", EP) == Span(3.0, 5.0)
    assert span_of("download", 206, 50_000, "bytes=-50000", EP) == Span(10.0, 10.5)
    assert span_of("download", 206, 200_000, None, EP) == Span(None, 2.0)  # from a log
    assert Span(None, 2.0).seconds == 2.0 and Span(3.0, 5.0).seconds == 2.0


@pytest.mark.parametrize(("status", "nbytes", "info"), [
    (304, 0, EP), (404, 100, EP), (200, 0, EP), (200, 100, None)])
def test_no_span(status: int, nbytes: int, info: AssetInfo | None) -> None:
    assert span_of("v/abc1/low/seg_00001.m4s", status, nbytes, None, info) is None


def test_download_size_estimate_and_ranges() -> None:
    unknown = AssetInfo("ep", "audio", 100.0, 4.0, 0, {"low": 48_000, "medium": 96_000,
                                                       "high": 192_000})
    assert download_size(unknown) == 96_000 * 100 // 8
    assert download_size(AssetInfo("x", "audio", 100.0, 4.0, 0)) == 0
    assert range_start("bytes=10-20", 100) == 10
    assert range_start("bytes=-20", 100) == 80
    assert range_start("bytes=-20", 0) is None
    assert range_start("items=1-2", 100) is None
    assert range_start(None, 100) is None
    assert rendition_of("v/abc/medium/seg_00001.m4s") == "medium"
    assert rendition_of("master.m3u8") is None


def test_asset_info_from_records() -> None:
    vod = {"id": "ep", "kind": "audio", "state": "ready", "duration": 123.456,
           "segment_duration": 4.0, "size": 9_999_999, "download_key": "v/a/download.m4a",
           "renditions": [{"id": "low", "bandwidth": 40_000, "codecs": "mp4a.40.5"},
                          {"id": "medium", "bandwidth": 80_000, "codecs": "mp4a.40.2"}]}
    info = AssetInfo.from_record(vod, download_bytes=1234)
    assert info == AssetInfo("ep", "audio", 123.456, 4.0, 1234,
                             {"low": 40_000, "medium": 80_000})
    assert AssetInfo.from_record(vod).download_bytes == 0  # `size` is the whole bundle
    live = {"id": "lv", "kind": "audio", "state": "live", "duration": 0.0,
            "segment_duration": 4.0, "renditions": [{"id": "a", "bandwidth": 64_000}],
            "live": {"part_duration": 0.5, "segment_duration": 4.0}}
    got = AssetInfo.from_record(live)
    assert (got.live, got.part_duration, got.duration) == (True, 0.5, 0.0)
    broken = AssetInfo.from_record({"id": "b", "duration": "nan", "renditions": "x"})
    assert (broken.duration, broken.renditions, broken.kind) == (0.0, {}, "audio")
