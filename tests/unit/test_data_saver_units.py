"""The Opus data-saver rung's pure parts (issue 14): Ogg Opus reading, the 'Opus' sample
entry and its dOps box, packet durations from the TOC byte, the segment grid, and how the
manifests list a second codec family (HLS variant order, a DASH AdaptationSet of its own)."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import m3u8
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from manifests import boxes, dash, hls
from manifests.codecs import opus_pre_skip
from manifests.model import Presentation, Rendition, Segment, codec_family
from packager import timeline
from packager.audio import opus_cmaf, saver

XSD = Path(__file__).resolve().parents[1] / "schemas" / "dash" / "DASH-MPD.xsd"
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}

HEAD = opus_cmaf.OpusHead(channels=1, pre_skip=312, input_sample_rate=48000, output_gain=0,
                          mapping_family=0)


def ogg_page(serial: int, seq: int, packets: list[bytes], *, flags: int = 0,
             continued_tail: bool = False) -> bytes:
    """One Ogg page (RFC 3533 §6) holding `packets` (CRC left 0: the reader does not check
    it, the encoder's output being a local file)."""
    lacing = bytearray()
    for i, p in enumerate(packets):
        n = len(p)
        lacing += b"\xff" * (n // 255)
        if not (continued_tail and i == len(packets) - 1):
            lacing.append(n % 255)
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, 0, serial, seq, 0, len(lacing))
    return header + bytes(lacing) + b"".join(packets)


def opus_head_packet(head: opus_cmaf.OpusHead) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, head.channels, head.pre_skip,
                                     head.input_sample_rate, head.output_gain,
                                     head.mapping_family)


def celt_20ms(payload: bytes) -> bytes:
    """A code-0 packet with TOC config 31 (CELT fullband, 20 ms): 960 samples."""
    return bytes([31 << 3]) + payload


# --- Ogg and Opus packets --------------------------------------------------------------------

@pytest.mark.parametrize(("toc", "extra", "samples"), [
    (1 << 3, b"", 960),          # SILK NB 20 ms, one frame
    (3 << 3, b"", 2880),         # SILK NB 60 ms
    (13 << 3, b"", 960),         # Hybrid SWB 20 ms
    (16 << 3, b"", 120),         # CELT NB 2.5 ms
    (31 << 3, b"", 960),         # CELT FB 20 ms
    ((31 << 3) | 1, b"", 1920),  # two equal frames
    ((31 << 3) | 2, b"", 1920),  # two frames of different sizes
    ((31 << 3) | 3, b"\x03", 2880),  # code 3, three frames
])
def test_packet_samples_from_the_toc(toc: int, extra: bytes, samples: int) -> None:
    assert opus_cmaf.packet_samples(bytes([toc]) + extra + b"\x00" * 10) == samples


def test_packet_samples_refuses_nonsense() -> None:
    with pytest.raises(opus_cmaf.OggOpusError):
        opus_cmaf.packet_samples(b"")
    with pytest.raises(opus_cmaf.OggOpusError):
        opus_cmaf.packet_samples(bytes([(31 << 3) | 3, 0]))  # code 3 with zero frames
    with pytest.raises(opus_cmaf.OggOpusError):
        opus_cmaf.packet_samples(bytes([(3 << 3) | 3, 3]))  # 3 x 60 ms > 120 ms


@given(st.lists(st.integers(min_value=1, max_value=1200), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=6))
def test_ogg_packets_round_trip_across_pages(sizes: list[int], per_page: int) -> None:
    """Packets of any size (lacing runs of 255, packets split over pages) come back whole."""
    packets = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    pages = [ogg_page(7, 0, [opus_head_packet(HEAD)], flags=2), ogg_page(7, 1, [b"OpusTags" + bytes(8)])]
    seq = 2
    for i in range(0, len(packets), per_page):
        group = packets[i: i + per_page]
        if len(group) > 1 and len(group[-1]) > 2:  # split the last packet over two pages
            head, tail = group[-1][:-2], group[-1][-2:]
            if len(head) % 255 == 0:
                pages.append(ogg_page(7, seq, [*group[:-1], head], continued_tail=True))
                pages.append(ogg_page(7, seq + 1, [tail], flags=1))
                seq += 2
                continue
        pages.append(ogg_page(7, seq, group))
        seq += 1
    head, rest = opus_cmaf.read_ogg_opus(io.BytesIO(b"".join(pages)))
    assert head == HEAD
    assert list(rest) == packets


def test_ogg_reader_refuses_a_second_stream_and_lost_sync() -> None:
    two = ogg_page(1, 0, [opus_head_packet(HEAD)]) + ogg_page(2, 0, [b"OpusTags"])
    with pytest.raises(opus_cmaf.OggOpusError, match="logical stream"):
        list(opus_cmaf.read_ogg_packets(io.BytesIO(two)))
    with pytest.raises(opus_cmaf.OggOpusError, match="sync"):
        list(opus_cmaf.read_ogg_packets(io.BytesIO(b"NotOgg" + bytes(40))))
    with pytest.raises(opus_cmaf.OggOpusError, match="OpusHead"):
        opus_cmaf.read_ogg_opus(io.BytesIO(ogg_page(1, 0, [b"vorbis" + bytes(30)])))


# --- init segment and fragments ------------------------------------------------------------------

def test_init_segment_has_an_opus_entry_with_dops() -> None:
    init = opus_cmaf.init_segment(HEAD)
    track = boxes.parse_init(init)
    assert track.codecs == "opus" and track.handler == "soun"
    assert track.timescale == 48000 and track.sample_rate == 48000 and track.channels == 1
    assert track.defaults.sample_duration == 960
    assert opus_pre_skip(init) == 312
    ftyp = next(boxes.iter_boxes(init))
    assert ftyp.type == b"ftyp" and b"Opus" in init[ftyp.body: ftyp.end]
    stsd = boxes.find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    assert stsd is not None
    entry = next(boxes.iter_boxes(init, stsd.body + 8, stsd.end))
    assert entry.type == b"Opus"
    dops = next(b for b in boxes.iter_boxes(init, entry.body + 28, entry.end) if b.type == b"dOps")
    # Version 0, 1 channel, PreSkip 312, 48 kHz input, gain 0, family 0: big-endian
    assert init[dops.body: dops.end] == bytes.fromhex("000101380000bb80000000")
    # no edit list: the first packet is at decode time 0, PreSkip says what to drop
    assert boxes.find(init, [b"moov", b"trak", b"edts"]) is None


def test_media_segment_durations_and_tfdt() -> None:
    packets = [celt_20ms(bytes([i]) * (40 + i)) for i in range(50)]
    seg = opus_cmaf.opus_segment(3, 100 * 960, packets, 960)
    frags = boxes.parse_fragments(seg, boxes.parse_init(opus_cmaf.init_segment(HEAD)).defaults)
    assert len(frags) == 1
    assert frags[0].base_decode_time == 96000 and frags[0].duration == 50 * 960
    assert frags[0].sample_count == 50
    assert frags[0].sample_sizes_total == sum(len(p) for p in packets)
    assert seg[frags[0].mdat_offset + 8: frags[0].end] == b"".join(packets)


def test_dops_keeps_a_channel_mapping_table() -> None:
    stereo = opus_cmaf.OpusHead(2, 312, 44100, -256, 1, b"\x01\x01\x00\x01")
    body = stereo.dops()[8:]
    assert body == bytes([0, 2]) + struct.pack(">HIhB", 312, 44100, -256, 1) + b"\x01\x01\x00\x01"


# --- the segment grid ------------------------------------------------------------------------

@given(st.integers(min_value=1_000, max_value=4 * 3600 * 1000), st.sampled_from([2.0, 4.0, 6.0, 2.5]))
def test_packet_cuts_start_within_half_a_packet_of_the_shared_grid(ms: int, target: float) -> None:
    boundaries = timeline.segment_boundaries(Fraction(ms, 1000), Fraction(target))
    cuts = saver.packet_cuts(boundaries)
    assert len(cuts) == len(boundaries)
    for b, c in zip(boundaries, cuts, strict=True):
        assert abs(Fraction(c * 960, 48000) - b) <= Fraction(1, 100)  # 10 ms
    # and as close to every AAC rung's cut as their half frame plus ours
    for rate in (22050, 44100, 48000):
        for b, aac, opus in zip(boundaries, timeline.frame_cuts(boundaries, rate), cuts, strict=True):
            gap = abs(Fraction(aac * 1024, rate) - Fraction(opus * 960, 48000))
            assert gap <= Fraction(512, rate) + Fraction(1, 100), (b, rate)


# --- manifests -------------------------------------------------------------------------------

def _rendition(rid: str, codecs: str, rate: int, frame: int, frames: list[int], sizes: list[int],
               channels: int) -> Rendition:
    segs, t = [], 0
    for i, (n, size) in enumerate(zip(frames, sizes, strict=True)):
        segs.append(Segment(number=i + 1, start=t, duration=n * frame, size=size))
        t += n * frame
    return Rendition(id=rid, content_type="audio", codecs=codecs, timescale=rate,
                     segments=tuple(segs), dir=f"v/abc123/{rid}", init_size=600,
                     sample_rate=rate, channels=channels)


WITH_SAVER = Presentation("talk", "audio", 4.0, (
    _rendition("low", "mp4a.40.2", 22050, 1024, [86, 86, 47], [34000, 33000, 18000], 2),
    _rendition("high", "mp4a.40.2", 48000, 1024, [188, 187, 102], [90000, 88000, 50000], 2),
    _rendition("saver", "opus", 48000, 960, [200, 200, 110], [16000, 15500, 9000], 1),
))


def test_codec_families_group_aac_first() -> None:
    assert codec_family("mp4a.40.2") == "mp4a" and codec_family("opus") == "opus"
    reordered = Presentation("t", "audio", 4.0, (WITH_SAVER.renditions[2], *WITH_SAVER.renditions[:2]))
    for p in (WITH_SAVER, reordered):
        assert [[r.id for r in fam] for fam in p.audio_sets] == [["low", "high"], ["saver"]]


def test_hls_lists_the_opus_variant_after_every_aac_one() -> None:
    text = hls.multivariant_playlist(WITH_SAVER)
    pl = m3u8.loads(text)
    assert [p.uri.split("/")[-2] for p in pl.playlists] == ["low", "high", "saver"]
    saver_inf = pl.playlists[-1].stream_info
    assert saver_inf.codecs == "opus"
    # the saver is the cheapest variant, and still listed last
    assert saver_inf.bandwidth < min(p.stream_info.bandwidth for p in pl.playlists[:-1])
    assert saver_inf.bandwidth >= saver_inf.average_bandwidth > 0
    line = next(ln for ln in text.splitlines() if 'CODECS="opus"' in ln)
    assert line.startswith("#EXT-X-STREAM-INF:BANDWIDTH=") and "AVERAGE-BANDWIDTH=" in line


def test_dash_gives_opus_its_own_adaptation_set() -> None:
    text = dash.mpd(WITH_SAVER)
    doc = etree.fromstring(text.encode())
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log
    sets = doc.findall(".//d:AdaptationSet", NS)
    assert [s.get("contentType") for s in sets] == ["audio", "audio"]
    assert [[r.get("codecs") for r in s.findall("d:Representation", NS)] for s in sets] == \
        [["mp4a.40.2", "mp4a.40.2"], ["opus"]]
    main, alt = sets
    assert main.find("d:Role", NS).get("value") == "main" and main.get("selectionPriority") is None
    assert alt.find("d:Role", NS).get("value") == "alternate" and alt.get("selectionPriority") == "0"
    assert alt.get("mimeType") == "audio/mp4" and alt.get("id") != main.get("id")
    rep = alt.find("d:Representation", NS)
    assert rep.get("audioSamplingRate") == "48000"
    assert rep.find("d:AudioChannelConfiguration", NS).get("value") == "1"
    tl = rep.find("d:SegmentTemplate/d:SegmentTimeline", NS)
    assert [(s.get("d"), s.get("r")) for s in tl] == [("192000", "1"), ("105600", None)]


def test_without_the_saver_the_manifests_have_one_audio_set() -> None:
    aac_only = Presentation("talk", "audio", 4.0, WITH_SAVER.renditions[:2])
    doc = etree.fromstring(dash.mpd(aac_only).encode())
    assert len(doc.findall(".//d:AdaptationSet", NS)) == 1
    assert "opus" not in hls.multivariant_playlist(aac_only)
