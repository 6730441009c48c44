"""Pure parts of live streaming: the part/segment plan, formats, the leveller, and the
LL-HLS / LL-DASH renderings checked by the independent rules checker and the DASH XSD."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llhls_rules import check_live_media, check_vod_media, parse_media
from lxml import etree

from manifests.dash_live import LiveRepresentation, live_mpd
from manifests.llhls import LiveTiming, LiveTrack, media_playlist, sealed_media_playlist
from manifests.model import Rendition, Segment
from packager.audio import aac_cmaf
from packager.errors import InvalidInput
from packager.live import formats
from packager.live.leveller import Leveller
from packager.live.plan import MIN_PART_SHARE, PlanError, make_plan
from packager.live.track import RungCutter, RungState

LADDERS = [(22050, 44100, 48000), (48000,), (16000, 24000), (8000, 22050, 48000), (44100,)]


@pytest.mark.parametrize("rates", LADDERS)
@pytest.mark.parametrize("hints", [(0.25, 2.0), (0.33, 2.0), (0.5, 4.0), (0.2, 1.0)])
def test_plan_keeps_the_part_rules_on_every_rung(rates: tuple[int, ...],
                                                hints: tuple[float, float]) -> None:
    try:
        plan = make_plan(list(rates), *hints)
    except PlanError:
        assert hints[1] < 3 * hints[0] * 1.5  # only tiny segments may be refused
        return
    # every rung's parts, cut at the nearest frame, over many parts
    for rate in rates:
        prev = 0
        for k in range(200):
            end = plan.part_end_frame(rate, k)
            seconds = Fraction((end - prev) * 1024, rate)
            assert seconds <= plan.part_target
            assert seconds >= MIN_PART_SHARE * plan.part_target
            prev = end
        segs = [plan.part_end_frame(rate, plan.parts_per_segment * (n + 1) - 1)
                for n in range(50)]
        lengths = [Fraction((b - a) * 1024, rate) for a, b in zip([0, *segs], segs, strict=False)]
        assert max(lengths) <= plan.target_duration <= hints[1]
    assert plan.parts_per_segment >= 2


def test_default_plan() -> None:
    plan = make_plan([22050, 44100, 48000], 0.25, 2.0)
    assert plan.target_duration == 2
    assert 0.2 < float(plan.part) < 0.26
    # the first segment is one part (a player joining needs a whole segment at once)
    assert plan.first_parts == 1 and plan.parts_in(1) == 1
    assert plan.locate(0) == (1, 0)
    assert plan.locate(1) == (2, 0)
    assert plan.locate(plan.parts_per_segment) == (2, plan.parts_per_segment - 1)
    assert plan.locate(1 + plan.parts_per_segment) == (3, 0)
    for index in range(100):
        number, k = plan.locate(index)
        assert plan.first_part_of(number) + k == index and k < plan.parts_in(number)


def test_formats() -> None:
    assert formats.parse_format(None).codec == "auto"
    assert formats.parse_format({"codec": "pcm_s16le", "sample_rate": 24000,
                                 "channels": 1}).sample_rate == 24000
    for bad in ({"codec": "pcm_s16le"}, {"codec": "flac"}, {"codec": "pcm_s16le",
                "sample_rate": 12345, "channels": 1}, {"codec": "mp3", "bogus": 1}, "mp3",
                {"codec": "pcm_s16le", "sample_rate": 24000, "channels": 3}):
        with pytest.raises(InvalidInput):
            formats.parse_format(bad)
    assert formats.sniff(b"RIFF\xff\xff\xff\xffWAVEfmt ") == "wav"
    assert formats.sniff(b"ID3\x04") == "mp3"
    assert formats.sniff(b"\xff\xfb\x90\x00") == "mp3"
    assert formats.sniff(b"\xff\xf1\x50\x80") == "aac"
    assert formats.sniff(b"OggS\x00\x02") == "opus"
    assert formats.sniff(b"\x00\x00\x01\x00") is None


def _wav_header(rate: int, channels: int, size: int = 0xFFFFFFFF) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", size) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"LIST" + struct.pack("<I", 4) + b"INFO" + b"data" + struct.pack("<I", size))


def test_streamed_wav_header_is_read_incrementally() -> None:
    head = _wav_header(24000, 1)
    for cut in range(0, len(head)):
        assert formats.parse_wav_header(head[:cut]) is None
    parsed = formats.parse_wav_header(head + b"\x00\x01")
    assert parsed is not None and (parsed.sample_rate, parsed.channels) == (24000, 1)
    assert parsed.data_offset == len(head)
    with pytest.raises(InvalidInput):
        formats.parse_wav_header(b"RIFX\x00\x00\x00\x00WAVE")


def test_leveller_reaches_target_from_quiet_and_loud_speechlike_input() -> None:
    rate = 24000
    rng = np.random.default_rng(1)
    t = np.arange(rate * 12) / rate
    envelope = (np.sin(2 * np.pi * 3 * t) > -0.2).astype(np.float32)  # syllables and gaps
    base = (rng.standard_normal(len(t)) * 0.05 * envelope).astype(np.float32)
    for scale in (0.1, 1.0, 4.0):
        lev = Leveller(rate, 1, -16.0)
        out = np.concatenate([lev.process(base[i:i + 4800] * scale)
                              for i in range(0, len(base), 4800)])
        # measure the output with a fresh leveller's meter (BS.1770 gated)
        meter = Leveller(rate, 1, -16.0)
        meter._measure(out.astype(np.float64).reshape(-1, 1))
        assert abs(meter.integrated() - (-16.0)) < 1.0, (scale, meter.integrated())


def test_cutter_drops_priming_and_cuts_at_the_plan() -> None:
    plan = make_plan([22050, 48000], 0.25, 2.0)
    cfg = aac_cmaf.AdtsConfig(2, 3, 2)
    cutter = RungCutter(plan, 48000)
    parts = [p for i in range(400) if (p := cutter.add(cfg, bytes([i % 256]) * 10)) is not None]
    assert parts[0].start_frame == 0 and parts[0].frames[0] == bytes([1]) * 10
    for a, b in zip(parts, parts[1:], strict=False):
        assert b.start_frame == a.start_frame + len(a.frames)
        assert b.index == a.index + 1


def _track(parts_per_seg: int, complete: int, open_parts: int, rate: int = 48000) -> LiveTrack:
    st_ = RungState("high", rate, 2, "mp4a.40.2", "v/abc/high", 700)
    tick = 0
    for n in range(complete * parts_per_seg + open_parts):
        d = 11 * 1024
        st_.add_part(f"p{n}", b"x" * 100, tick, d)
        tick += d
        if len(st_.open_parts) == parts_per_seg and n < complete * parts_per_seg:
            st_.close_segment()
    return st_.snapshot()


TIMING = LiveTiming(target_duration=2, part_target=11 * 1024 / 48000, start=1.8e9)


@pytest.mark.parametrize("complete,open_parts", [(0, 1), (1, 0), (3, 2), (12, 5), (30, 0)])
def test_live_playlists_pass_the_rules(complete: int, open_parts: int) -> None:
    track = _track(8, complete, open_parts)
    other = _track(8, complete, open_parts, rate=22050)
    text = media_playlist(track, TIMING, reports=[("../low/index.m3u8", other)])
    pl = check_live_media(text, target_duration=2, audio=True)
    assert pl.rendition_reports[0].uri == "../low/index.m3u8"
    skipped = media_playlist(track, TIMING, skip=True)
    check_live_media(skipped, target_duration=2, audio=True)
    if complete >= 12:
        assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in skipped
    else:
        assert "EXT-X-SKIP" not in skipped


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 7))
def test_each_reload_extends_the_last(complete: int, open_parts: int) -> None:
    prev = parse_media(media_playlist(_track(8, complete, open_parts), TIMING))
    nxt = media_playlist(_track(8, complete, open_parts + 1), TIMING)
    check_live_media(nxt, target_duration=2, previous=prev, audio=True)


def test_has_part_follows_rfc_blocking_rules() -> None:
    st_ = RungState("x", 48000, 2, "mp4a.40.2", "v/a/x", 1)
    for n in range(10):
        st_.add_part(f"p{n}", b"", 0, 1024)
        if len(st_.open_parts) == 4:
            st_.close_segment()
    # segments 1 and 2 complete, segment 3 has parts 0 and 1
    assert st_.has(2, None) and st_.has(1, 3) and st_.has(3, 1)
    assert not st_.has(3, None) and not st_.has(3, 2) and not st_.has(4, 0)


def test_sealed_playlist_is_vod_with_the_live_target() -> None:
    segs = tuple(Segment(n + 1, n * 89_000, 89_000, 1000) for n in range(5))
    r = Rendition("high", "audio", "mp4a.40.2", 48000, segs, "v/a/high")
    text = sealed_media_playlist(r, 2, 1.8e9)
    check_vod_media(text, target_duration=2)
    assert "#EXT-X-PROGRAM-DATE-TIME:" in text


def test_dynamic_mpd_validates(dash_xsd: etree.XMLSchema) -> None:
    text = live_mpd([LiveRepresentation("low", 90000, "mp4a.40.2", 22050, 2, "v/a/low"),
                     LiveRepresentation("high", 420000, "mp4a.40.2", 48000, 2, "v/a/high")],
                    start=1.8e9, published=1.8e9 + 3, segment=1.857, part=0.232,
                    latency_target=1.0, utc_url="http://127.0.0.1:8080/v1/time", title="t")
    doc = etree.fromstring(text.encode())
    assert dash_xsd.validate(doc), dash_xsd.error_log
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    tpl = doc.find(".//d:SegmentTemplate", ns)
    assert tpl is not None and tpl.get("availabilityTimeComplete") == "false"
    assert math.isclose(float(tpl.get("availabilityTimeOffset")), 1.625, abs_tol=1e-3)
    assert doc.get("type") == "dynamic"


def test_dynamic_mpd_with_a_timeline_validates(dash_xsd: etree.XMLSchema) -> None:
    spans = [(0, 40960), (40960, 40960), (81920, 40970), (122890, 40960), (163850, 40960)]
    text = live_mpd([LiveRepresentation("low", 90000, "mp4a.40.2", 22050, 2, "v/a/low")],
                    start=1.8e9, published=1.8e9 + 3, segment=1.857, part=0.232,
                    latency_target=1.0, utc_url="http://127.0.0.1:8080/v1/time",
                    timelines={"low": spans})
    doc = etree.fromstring(text.encode())
    assert dash_xsd.validate(doc), dash_xsd.error_log
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    s_elems = doc.findall(".//d:SegmentTimeline/d:S", ns)
    # runs folded: 2 x 40960, then 40970, then 2 x 40960
    assert [(e.get("t"), e.get("d"), e.get("r")) for e in s_elems] == [
        ("0", "40960", "1"), (None, "40970", None), (None, "40960", "1")]
    assert doc.find(".//d:SegmentTemplate", ns).get("duration") is None


@pytest.fixture(scope="module")
def dash_xsd() -> etree.XMLSchema:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "schemas" / "dash" / "DASH-MPD.xsd"
    return etree.XMLSchema(etree.parse(str(path)))
