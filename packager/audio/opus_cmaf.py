"""Opus in CMAF: Ogg Opus packets in, init segment and media fragments out (pure, no I/O).

The data-saver rung (issue 14) is muxed by sori like the AAC rungs, for the same reason:
sori owns the segment boundaries, so the Opus segments start where the AAC ones do. The
encoder (ffmpeg's libopus) writes Ogg, whose pages carry the packets (RFC 7845); they
are carried into ISOBMFF as "Encapsulation of Opus in ISO Base Media File Format"
(opus-codec.org, v0.8.1) describes it: an 'Opus' sample entry with a 'dOps' box, the
timescale 48 kHz, one Opus packet per sample.

Timing follows what ffmpeg's own mp4 muxer writes for fragmented (CMAF) output: the
first packet at decode time 0, the encoder's priming (OpusHead pre-skip, 312 samples from
libopus) in dOps PreSkip, and no edit list. A decoder drops PreSkip samples from its
first output, so the first sample heard is the first sample of the source, as with the
AAC rungs whose priming frame is dropped by the muxer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packager.audio.aac_cmaf import audio_entry_fields, audio_init, box, media_segment

SAMPLE_RATE = 48_000  # Opus always decodes at 48 kHz; the track's timescale (spec §4.3.1)
OGG_CAPTURE = b"OggS"
OGG_HEADER = struct.Struct("<4sBBqIIIB")  # RFC 3533 §6: capture .. page_segments
OPUS_HEAD = b"OpusHead"
OPUS_TAGS = b"OpusTags"


class OggOpusError(ValueError):
    """The encoder's output is not a clean Ogg Opus stream."""


@dataclass(frozen=True)
class OpusHead:
    """The identification header (RFC 7845 §5.1), little-endian in Ogg."""

    channels: int
    pre_skip: int  # samples at 48 kHz to drop from the decoder's first output
    input_sample_rate: int
    output_gain: int  # Q7.8 dB
    mapping_family: int
    mapping: bytes = b""  # stream count, coupled count, channel mapping (family != 0)

    @classmethod
    def parse(cls, packet: bytes) -> OpusHead:
        if len(packet) < 19 or not packet.startswith(OPUS_HEAD):
            raise OggOpusError("the first Ogg packet is not an OpusHead")
        version, channels, pre_skip, rate, gain, family = struct.unpack_from("<BBHIhB", packet, 8)
        if version >> 4 != 0:
            raise OggOpusError(f"unsupported OpusHead version {version}")
        return cls(channels, pre_skip, rate, gain, family, packet[19:] if family else b"")

    def dops(self) -> bytes:
        """The Opus Specific Box (spec §4.3.2): the same fields, big-endian, Version 0."""
        return box(b"dOps", struct.pack(">BBHIhB", 0, self.channels, self.pre_skip,
                                         self.input_sample_rate, self.output_gain,
                                         self.mapping_family), self.mapping)


# Frame sizes in 48 kHz samples by TOC configuration (RFC 6716 §3.1, Table 2):
# SILK 10/20/40/60 ms (0-11), Hybrid 10/20 ms (12-15), CELT 2.5/5/10/20 ms (16-31).
_SILK = (480, 960, 1920, 2880)
_HYBRID = (480, 960)
_CELT = (120, 240, 480, 960)


def packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 §3.1-3.2)."""
    if not packet:
        raise OggOpusError("empty Opus packet")
    config = packet[0] >> 3
    if config < 12:
        frame = _SILK[config % 4]
    elif config < 16:
        frame = _HYBRID[config % 2]
    else:
        frame = _CELT[config % 4]
    code = packet[0] & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(packet) < 2:
            raise OggOpusError("Opus code-3 packet without a frame count")
        count = packet[1] & 0x3F
    samples = frame * count
    if not 0 < samples <= 5760:  # at most 120 ms (§3.2.5)
        raise OggOpusError(f"bad Opus packet duration ({samples} samples)")
    return samples


def read_ogg_packets(stream: BinaryIO) -> Iterator[bytes]:
    """The packets of a single-stream Ogg file (RFC 3533), streaming, pages in order."""
    pending = bytearray()
    serial: int | None = None
    while True:
        header = stream.read(OGG_HEADER.size)
        if not header:
            break
        if len(header) < OGG_HEADER.size:
            raise OggOpusError("truncated Ogg page header")
        capture, version, _flags, _granule, page_serial, _seq, _crc, nsegs = \
            OGG_HEADER.unpack(header)
        if capture != OGG_CAPTURE or version != 0:
            raise OggOpusError("lost Ogg page sync")
        if serial is None:
            serial = page_serial
        elif page_serial != serial:
            raise OggOpusError("more than one logical stream in the Ogg file")
        lacing = stream.read(nsegs)
        body = stream.read(sum(lacing))
        if len(lacing) != nsegs or len(body) != sum(lacing):
            raise OggOpusError("truncated Ogg page")
        pos = 0
        for value in lacing:
            pending += body[pos: pos + value]
            pos += value
            if value < 255:  # a lacing value below 255 ends the packet (RFC 3533 §5)
                yield bytes(pending)
                pending.clear()
    if pending:
        raise OggOpusError("the Ogg stream ends inside a packet")


def read_ogg_opus(stream: BinaryIO) -> tuple[OpusHead, Iterator[bytes]]:
    """The OpusHead and an iterator over the audio packets (after OpusTags)."""
    packets = read_ogg_packets(stream)
    head = OpusHead.parse(next(packets, b""))
    tags = next(packets, b"")
    if not tags.startswith(OPUS_TAGS):
        raise OggOpusError("the second Ogg packet is not OpusTags")
    return head, packets


def init_segment(head: OpusHead) -> bytes:
    """ftyp + moov for one Opus track, timescale 48 kHz, no samples (fragmented).

    The 'Opus' brand is listed among the compatible ones (spec §4.1)."""
    entry = box(b"Opus", *audio_entry_fields(head.channels, SAMPLE_RATE), head.dops())
    return audio_init(SAMPLE_RATE, entry, 960, extra_brands=(b"Opus",))


def opus_segment(sequence: int, base_time: int, packets: Iterable[bytes],
                 sample_duration: int) -> bytes:
    """styp + moof + mdat holding `packets`, each `sample_duration` ticks long."""
    return media_segment(sequence, base_time, packets, sample_duration=sample_duration)
