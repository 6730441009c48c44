"""Box reading and codec strings, over boxes built in the test (no files, no ffmpeg)."""

from __future__ import annotations

import io
import struct

import pytest

from manifests import boxes, codecs
from packager.audio import aac_cmaf
from packager.audio.aac_cmaf import box, full_box

LC_48K_STEREO = aac_cmaf.AdtsConfig(profile=2, sample_rate_index=3, channel_config=2)


def test_aac_init_segment_reads_back() -> None:
    init = aac_cmaf.init_segment(LC_48K_STEREO, 2, 128_000, 140_000)
    info = boxes.parse_init(init)
    assert info.handler == "soun"
    assert info.timescale == 48000
    assert info.codecs == "mp4a.40.2"
    assert (info.sample_rate, info.channels) == (48000, 2)
    assert info.defaults.sample_duration == 1024


@pytest.mark.parametrize("aot, index, rate", [(2, 7, 22050), (5, 4, 44100), (29, 3, 48000)])
def test_audio_specific_config(aot: int, index: int, rate: int) -> None:
    asc = aac_cmaf.AdtsConfig(aot, index, 2).audio_specific_config()
    assert codecs.parse_audio_specific_config(asc) == (aot, rate, 2)


def test_fragments_read_back_exact_timing() -> None:
    frames = [bytes([i]) * (100 + i) for i in range(50)]
    seg = aac_cmaf.media_segment(7, 1024 * 300, frames)
    init = boxes.parse_init(aac_cmaf.init_segment(LC_48K_STEREO, 2, 1, 1))
    (frag,) = boxes.parse_fragments(seg, init.defaults)
    assert frag.base_decode_time == 1024 * 300
    assert frag.duration == 50 * 1024
    assert frag.sample_count == 50
    assert frag.sample_sizes_total == sum(len(f) for f in frames)
    assert frag.first_sample_size == 100 and frag.first_is_sync
    # trun data_offset points at the first sample's bytes (default-base-is-moof)
    assert seg[frag.mdat_offset + 8: frag.mdat_offset + 8 + 100] == frames[0]


def test_avc_codec_string_from_avcc() -> None:
    avcc = box(b"avcC", bytes([1, 0x64, 0x00, 0x1F, 0xFF, 0xE0, 0x00]))
    avc1 = box(b"avc1", bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", 1280, 720),
               bytes(50), avcc)
    data = avc1
    entry = next(boxes.iter_boxes(data))
    info = codecs.sample_entry_info(data, entry)
    assert info == {"codecs": "avc1.64001F", "width": 1280, "height": 720}


def test_read_adts_round_trip() -> None:
    def adts(payload: bytes) -> bytes:
        n = len(payload) + 7
        return bytes([0xFF, 0xF1, (1 << 6) | (3 << 2) | 0, (2 << 6) | (n >> 11),
                      (n >> 3) & 0xFF, ((n & 7) << 5) | 0x1F, 0xFC]) + payload
    stream = io.BytesIO(adts(b"abc") + adts(b"defg"))
    got = list(aac_cmaf.read_adts(stream))
    assert [p for _c, p in got] == [b"abc", b"defg"]
    assert got[0][0] == LC_48K_STEREO
    with pytest.raises(aac_cmaf.AdtsError):
        list(aac_cmaf.read_adts(io.BytesIO(adts(b"abc")[:8])))


@pytest.mark.parametrize("data", [b"\x00\x00\x00\x20moov", b"\x00\x00\x00\x04free", b"\x00\x00"])
def test_malformed_boxes_raise(data: bytes) -> None:
    with pytest.raises(boxes.BoxError):
        list(boxes.iter_boxes(data))


def test_unsupported_sample_entry() -> None:
    data = box(b"stsd", struct.pack(">I", 0), struct.pack(">I", 1), box(b"Opus", bytes(28)))
    entry = next(boxes.iter_boxes(data, 16))
    with pytest.raises(boxes.BoxError, match="Opus"):
        codecs.sample_entry_info(data, entry)
    assert full_box(b"x", 0, 0)[:4] == b"\x00\x00\x00\x0c"
