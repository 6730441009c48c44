"""Rendering HLS and DASH from the model: round-trips through the m3u8 parser, the DASH XSD,
and expected outputs kept as files (regenerate with SORI_UPDATE_EXPECTED=1)."""

from __future__ import annotations

import os
from pathlib import Path

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from manifests import dash, hls
from manifests.bandwidth import average_bitrate, peak_bitrate
from manifests.model import Presentation, Rendition, Segment

HERE = Path(__file__).parent
XSD = HERE.parent / "schemas" / "dash" / "DASH-MPD.xsd"


def audio(rid: str, rate: int, frames: list[int], sizes: list[int]) -> Rendition:
    segs, t = [], 0
    for i, (n, size) in enumerate(zip(frames, sizes, strict=True)):
        segs.append(Segment(number=i + 1, start=t, duration=n * 1024, size=size))
        t += n * 1024
    return Rendition(id=rid, content_type="audio", codecs="mp4a.40.2", timescale=rate,
                     segments=tuple(segs), dir=f"v/abc123/{rid}", init_size=700,
                     sample_rate=rate, channels=2)


def video(rid: str, w: int, h: int, n: int, size: int) -> Rendition:
    segs = tuple(Segment(number=i + 1, start=i * 360000, duration=360000, size=size,
                         iframe_offset=60, iframe_length=size // 5) for i in range(n))
    return Rendition(id=rid, content_type="video", codecs="avc1.64001F", timescale=90000,
                     segments=segs, dir=f"v/abc123/{rid}", init_size=900, width=w, height=h,
                     frame_rate=30.0)


AUDIO = Presentation("talk", "audio", 4.0, (
    audio("low", 22050, [86, 86, 47], [34000, 33000, 18000]),
    audio("high", 48000, [188, 187, 102], [90000, 88000, 50000]),
), title="A talk")

VIDEO = Presentation("clip", "video", 4.0, (
    video("720p", 1280, 720, 3, 1_400_000),
    video("360p", 640, 360, 3, 400_000),
    audio("audio", 48000, [188, 187, 188], [64000, 64000, 64000]),
), title="A clip & <friends>")


def expect(name: str, text: str) -> None:
    path = HERE / "expected" / name
    if os.environ.get("SORI_UPDATE_EXPECTED"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the expected file"


def test_audio_multivariant_round_trip() -> None:
    text = hls.multivariant_playlist(AUDIO)
    expect("audio_master.m3u8", text)
    pl = m3u8.loads(text)
    assert pl.is_variant
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    assert [p.uri for p in pl.playlists] == ["v/abc123/low/index.m3u8", "v/abc123/high/index.m3u8"]
    for p, r in zip(pl.playlists, AUDIO.renditions, strict=True):
        assert p.stream_info.bandwidth == peak_bitrate(r, 4.0)
        assert p.stream_info.average_bandwidth == average_bitrate(r)
        assert p.stream_info.codecs == "mp4a.40.2"


def test_media_playlist_round_trip_exact_durations() -> None:
    r = AUDIO.renditions[1]
    text = hls.media_playlist(r)
    expect("audio_high.m3u8", text)
    pl = m3u8.loads(text)
    assert pl.playlist_type == "vod"
    assert pl.is_endlist
    assert pl.segment_map[0].uri == "init.mp4"
    assert [s.uri for s in pl.segments] == ["seg_00001.m4s", "seg_00002.m4s", "seg_00003.m4s"]
    for seg, model in zip(pl.segments, r.segments, strict=True):
        assert seg.duration == pytest.approx(model.duration / r.timescale, abs=1e-6)
        assert seg.duration <= pl.target_duration
        assert round(seg.duration) <= pl.target_duration
    # dumps → loads is stable
    assert m3u8.loads(pl.dumps()).dumps() == pl.dumps()


def test_video_multivariant_has_audio_group_and_iframes() -> None:
    text = hls.multivariant_playlist(VIDEO)
    expect("video_master.m3u8", text)
    pl = m3u8.loads(text)
    assert [m.type for m in pl.media] == ["AUDIO"]
    assert pl.media[0].group_id == "audio"
    assert pl.media[0].uri == "v/abc123/audio/index.m3u8"
    top = pl.playlists[-1].stream_info
    assert top.resolution == (1280, 720)
    assert top.frame_rate == 30.0
    assert top.codecs == "avc1.64001F,mp4a.40.2"
    assert top.audio == "audio"
    a = VIDEO.audio[0]
    v = VIDEO.video[0]
    assert top.bandwidth == peak_bitrate(v, 4.0) + peak_bitrate(a, 4.0)
    assert [p.uri for p in pl.iframe_playlists] == ["v/abc123/360p/iframes.m3u8",
                                                    "v/abc123/720p/iframes.m3u8"]


def test_iframe_playlist_byteranges() -> None:
    r = VIDEO.video[0]
    pl = m3u8.loads(hls.iframe_playlist(r))
    assert pl.is_i_frames_only
    assert [s.byterange for s in pl.segments] == [f"{1_400_000 // 5}@60"] * 3


def test_mpd_validates_against_the_dash_schema() -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    for p in (AUDIO, VIDEO):
        text = dash.mpd(p)
        doc = etree.fromstring(text.encode())
        assert schema.validate(doc), schema.error_log
    expect("audio.mpd", dash.mpd(AUDIO))


def test_mpd_timeline_matches_segments() -> None:
    doc = etree.fromstring(dash.mpd(VIDEO).encode())
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    sets = doc.findall(".//d:AdaptationSet", ns)
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    for rep in doc.findall(".//d:Representation", ns):
        r = next(x for x in VIDEO.renditions if x.id == rep.get("id"))
        durations = []
        for s in rep.findall(".//d:S", ns):
            durations += [int(s.get("d"))] * (1 + int(s.get("r", "0")))
        assert durations == [seg.duration for seg in r.segments]


def test_mpd_escapes_title() -> None:
    assert "A clip &amp; &lt;friends&gt;" in dash.mpd(VIDEO)


def test_iso_duration() -> None:
    assert dash.iso_duration(3723.4567) == "PT1H2M3.457S"
    assert dash.iso_duration(0.5) == "PT0.500S"


def test_peak_bandwidth_ignores_short_last_segment_alone() -> None:
    # a short tail with a high rate on its own must not set the peak: sets of segments
    # between 0.5 and 1.5 target durations are considered (RFC 8216bis 4.4.6.2)
    r = audio("x", 48000, [188, 188, 10], [50000, 50000, 6000])
    seconds = 10 * 1024 / 48000
    assert 8 * 6000 / seconds > peak_bitrate(r, 4.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(10, 300), st.integers(100, 200_000)), min_size=1,
                max_size=30))
def test_media_playlist_round_trip_property(segs: list[tuple[int, int]]) -> None:
    r = audio("p", 44100, [n for n, _ in segs], [s for _, s in segs])
    pl = m3u8.loads(hls.media_playlist(r))
    assert len(pl.segments) == len(segs)
    total = sum(s.duration for s in pl.segments)
    assert total == pytest.approx(r.duration, abs=1e-5 * len(segs))
    assert all(s.duration <= pl.target_duration for s in pl.segments)
    assert peak_bitrate(r, 4.0) >= average_bitrate(r)
