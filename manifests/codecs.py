"""RFC 6381 codec strings read from the bitstream's sample entries.

`mp4a.40.<audio object type>` from the esds DecoderSpecificInfo (ISO/IEC 14496-1 §7.2.6,
14496-3 §1.6.2.1), `avc1.PPCCLL` from avcC (ISO/IEC 14496-15 §5.3.3.1), and `opus` for
an 'Opus' sample entry with its dOps box ("Encapsulation of Opus in ISO Base Media File
Format" §4.3; the lower-case string is the one MSE's isTypeSupported and DASH-IF use).
"""

from __future__ import annotations

import struct
from typing import Any

from manifests.boxes import Box, BoxError, find, iter_boxes

AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
                    11025, 8000, 7350)

AUDIO_ENTRY_FIELDS = 28  # SampleEntry (8) + AudioSampleEntry fields (20), ISOBMFF §12.2.3
VISUAL_ENTRY_FIELDS = 78  # SampleEntry (8) + VisualSampleEntry fields (70), ISOBMFF §12.1.3


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            v = (v << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v


def parse_audio_specific_config(asc: bytes) -> tuple[int, int, int]:
    """(audio object type, sample rate, channel configuration) of an AudioSpecificConfig."""
    try:
        bits = _Bits(asc)
        aot = bits.read(5)
        if aot == 31:
            aot = 32 + bits.read(6)
        index = bits.read(4)
        rate = bits.read(24) if index == 0xF else AAC_SAMPLE_RATES[index]
        channels = bits.read(4)
    except IndexError:
        raise BoxError("truncated AudioSpecificConfig") from None
    return aot, rate, channels


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, payload offset, payload length) of an MPEG-4 descriptor (14496-1 §8.3.3)."""
    tag = data[pos]
    pos += 1
    length = 0
    for _ in range(4):
        b = data[pos]
        pos += 1
        length = (length << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return tag, pos, length


def esds_audio_config(data: bytes, esds: Box) -> tuple[int, bytes]:
    """(objectTypeIndication, AudioSpecificConfig bytes) from an esds box."""
    pos = esds.body + 4  # FullBox header
    tag, pos, _len = _descriptor(data, pos)
    if tag != 0x03:
        raise BoxError("esds without ES_Descriptor")
    flags = data[pos + 2]
    pos += 3
    if flags & 0x80:
        pos += 2  # dependsOn_ES_ID
    if flags & 0x40:
        pos += 1 + data[pos]  # URL
    if flags & 0x20:
        pos += 2  # OCR_ES_Id
    tag, pos, _len = _descriptor(data, pos)
    if tag != 0x04:
        raise BoxError("esds without DecoderConfigDescriptor")
    oti = data[pos]
    pos += 13
    tag, pos, length = _descriptor(data, pos)
    if tag != 0x05:
        raise BoxError("esds without DecoderSpecificInfo")
    return oti, data[pos: pos + length]


def sample_entry_info(data: bytes, entry: Box) -> dict[str, Any]:
    """codecs and the media's shape (rate/channels or width/height) from a sample entry."""
    fourcc = entry.type.decode("ascii", "replace")
    if entry.type == b"mp4a":
        channels = struct.unpack_from(">H", data, entry.body + 16)[0]
        rate = struct.unpack_from(">I", data, entry.body + 24)[0] >> 16
        for child in iter_boxes(data, entry.body + AUDIO_ENTRY_FIELDS, entry.end):
            if child.type == b"esds":
                oti, asc = esds_audio_config(data, child)
                if oti == 0x40 and asc:
                    aot, rate, chan_cfg = parse_audio_specific_config(asc)
                    channels = chan_cfg or channels
                    return {"codecs": f"mp4a.40.{aot}", "sample_rate": rate, "channels": channels}
                return {"codecs": f"mp4a.{oti:02x}", "sample_rate": rate, "channels": channels}
        raise BoxError("mp4a sample entry without esds")
    if entry.type == b"Opus":
        return opus_entry_info(data, entry)
    if entry.type in (b"avc1", b"avc3"):
        width, height = struct.unpack_from(">HH", data, entry.body + 24)
        for child in iter_boxes(data, entry.body + VISUAL_ENTRY_FIELDS, entry.end):
            if child.type == b"avcC":
                profile, compat, level = data[child.body + 1: child.body + 4]
                return {"codecs": f"{fourcc}.{profile:02X}{compat:02X}{level:02X}",
                        "width": width, "height": height}
        raise BoxError(f"{fourcc} sample entry without avcC")
    raise BoxError(f"unsupported sample entry {fourcc!r}")


OPUS_RATE = 48000  # an Opus decoder always runs at 48 kHz; dOps InputSampleRate is informative


def opus_entry_info(data: bytes, entry: Box) -> dict[str, Any]:
    """codecs, rate and channels of an 'Opus' sample entry from its dOps box: Version 0,
    OutputChannelCount, PreSkip, InputSampleRate, OutputGain, ChannelMappingFamily."""
    for child in iter_boxes(data, entry.body + AUDIO_ENTRY_FIELDS, entry.end):
        if child.type == b"dOps":
            if child.end - child.body < 11:
                raise BoxError("truncated dOps box")
            version, channels = data[child.body], data[child.body + 1]
            if version != 0:
                raise BoxError(f"unsupported dOps version {version}")
            return {"codecs": "opus", "sample_rate": OPUS_RATE, "channels": channels}
    raise BoxError("Opus sample entry without dOps")


def opus_pre_skip(data: bytes) -> int:
    """dOps PreSkip (samples at 48 kHz the decoder drops at the start) of an init segment."""
    stsd = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    if stsd is None:
        raise BoxError("init segment has no stsd")
    entry = next(iter_boxes(data, stsd.body + 8, stsd.end))
    if entry.type != b"Opus":
        raise BoxError(f"sample entry {entry.type!r} is not Opus")
    for child in iter_boxes(data, entry.body + AUDIO_ENTRY_FIELDS, entry.end):
        if child.type == b"dOps":
            pre_skip: int = struct.unpack_from(">H", data, child.body + 2)[0]
            return pre_skip
    raise BoxError("Opus sample entry without dOps")
