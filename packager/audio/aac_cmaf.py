"""AAC in CMAF: ADTS frames in, init segment and media fragments out (pure, no I/O).

sori muxes its audio itself rather than using ffmpeg's segmenters, so that it owns the
segment boundaries (one grid shared by every rendition, no sliver of a last segment),
drops the encoder's priming frame, and can stitch together the output of encoders run
in parallel on consecutive chunks. Box layouts follow ISO/IEC 14496-12 and the CMAF
constraints of ISO/IEC 23000-19 (tfdt in every fragment, default-base-is-moof).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

SAMPLES_PER_FRAME = 1024
SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
                11025, 8000, 7350)
# sample_depends_on = 2 (depends on no other sample), sync sample (ISOBMFF §8.8.3.1)
AUDIO_SAMPLE_FLAGS = 0x02000000
TRACK_ID = 1
MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


class AdtsError(ValueError):
    """The encoder's output is not a clean ADTS stream."""


@dataclass(frozen=True)
class AdtsConfig:
    profile: int  # audio object type
    sample_rate_index: int
    channel_config: int

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATES[self.sample_rate_index]

    def audio_specific_config(self) -> bytes:
        """AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): AOT(5) rate index(4) channels(4)."""
        v = (self.profile << 11) | (self.sample_rate_index << 7) | (self.channel_config << 3)
        return struct.pack(">H", v)


def read_adts(stream: BinaryIO) -> Iterator[tuple[AdtsConfig, bytes]]:
    """Yield (config, raw AAC frame) for each ADTS frame (ISO/IEC 13818-7 §6.2), streaming."""
    while True:
        header = stream.read(7)
        if not header:
            return
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
            raise AdtsError("lost ADTS sync")
        protection_absent = header[1] & 1
        profile = (header[2] >> 6) + 1
        rate_index = (header[2] >> 2) & 0xF
        channels = ((header[2] & 1) << 2) | (header[3] >> 6)
        length = ((header[3] & 3) << 11) | (header[4] << 3) | (header[5] >> 5)
        blocks = (header[6] & 3) + 1
        if blocks != 1:
            raise AdtsError("ADTS frames with several raw data blocks are not supported")
        skip = 0 if protection_absent else 2  # CRC
        if length < 7 + skip:
            raise AdtsError("bad ADTS frame length")
        body = stream.read(length - 7)
        if len(body) != length - 7:
            raise AdtsError("truncated ADTS frame")
        yield AdtsConfig(profile, rate_index, channels), body[skip:]


# --- boxes ----------------------------------------------------------------------------------

def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _descriptor(tag: int, payload: bytes) -> bytes:
    """An MPEG-4 descriptor with a 4-byte expandable length (14496-1 §8.3.3)."""
    n = len(payload)
    size = bytes([0x80 | (n >> 21) & 0x7F, 0x80 | (n >> 14) & 0x7F, 0x80 | (n >> 7) & 0x7F, n & 0x7F])
    return bytes([tag]) + size + payload


def esds(asc: bytes, avg_bitrate: int, max_bitrate: int, buffer_size: int) -> bytes:
    dsi = _descriptor(0x05, asc)
    # objectTypeIndication 0x40 (MPEG-4 Audio), streamType 5 (audio) << 2 | upStream 0 | 1
    dcd = _descriptor(0x04, struct.pack(">BB", 0x40, 0x15) + buffer_size.to_bytes(3, "big")
                      + struct.pack(">II", max_bitrate, avg_bitrate) + dsi)
    sl = _descriptor(0x06, b"\x02")
    es = _descriptor(0x03, struct.pack(">HB", 0, 0) + dcd + sl)
    return full_box(b"esds", 0, 0, es)


def init_segment(cfg: AdtsConfig, channels: int, avg_bitrate: int, max_bitrate: int) -> bytes:
    """ftyp + moov for one AAC track, timescale = sample rate, no samples (fragmented)."""
    rate = cfg.sample_rate
    mp4a = box(b"mp4a", *audio_entry_fields(channels, rate),
               esds(cfg.audio_specific_config(), avg_bitrate, max_bitrate, 6144 * channels // 8))
    return audio_init(rate, mp4a, SAMPLES_PER_FRAME)


def audio_entry_fields(channels: int, rate: int) -> tuple[bytes, ...]:
    """The AudioSampleEntry fields before the codec's own boxes (ISOBMFF §12.2.3)."""
    return (bytes(6), struct.pack(">H", 1), bytes(8),
            struct.pack(">HHHH", channels, 16, 0, 0), struct.pack(">I", rate << 16))


def audio_init(timescale: int, sample_entry: bytes, default_duration: int,
               extra_brands: tuple[bytes, ...] = ()) -> bytes:
    """ftyp + moov of one fragmented audio track whose sample description is `sample_entry`
    (shared by the AAC rungs and the Opus data-saver rung)."""
    ftyp = box(b"ftyp", b"cmfc", struct.pack(">I", 0), b"cmfc", b"iso6", b"mp41", b"dash",
               *extra_brands)
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0),
                    struct.pack(">IH", 0x00010000, 0x0100), bytes(10), MATRIX, bytes(24),
                    struct.pack(">I", TRACK_ID + 1))
    tkhd = full_box(b"tkhd", 0, 0x000003, struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0),
                    bytes(8), struct.pack(">hhHH", 0, 0, 0x0100, 0), MATRIX,
                    struct.pack(">II", 0, 0))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, 0),
                    struct.pack(">HH", 0x55C4, 0))  # language 'und' (ISO 639-2/T packed)
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"soun"), bytes(12), b"sori audio\x00")
    smhd = full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(b"stbl",
               full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry),
               full_box(b"stts", 0, 0, struct.pack(">I", 0)),
               full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
               full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
               full_box(b"stco", 0, 0, struct.pack(">I", 0)))
    minf = box(b"minf", smhd, dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, default_duration, 0,
                                               AUDIO_SAMPLE_FLAGS))
    moov = box(b"moov", mvhd, trak, box(b"mvex", trex))
    return ftyp + moov


def media_segment(sequence: int, base_time: int, frames: Iterable[bytes], *,
                  styp: bool = True, sample_duration: int = SAMPLES_PER_FRAME) -> bytes:
    """styp + moof + mdat holding `frames` (`sample_duration` ticks each: 1024 samples
    for AAC, 960 for 20 ms Opus packets) starting at `base_time`.

    Without `styp`: a CMAF chunk (moof + mdat) that continues a segment, as a live
    part after the first of its segment; the segment is its parts laid end to end."""
    payload = list(frames)
    sizes = b"".join(struct.pack(">I", len(f)) for f in payload)
    head = box(b"styp", b"msdh", struct.pack(">I", 0), b"msdh", b"cmfs") if styp else b""
    # tfhd: default-base-is-moof | default-sample-duration | default-sample-flags
    tfhd = full_box(b"tfhd", 0, 0x020000 | 0x08 | 0x20,
                    struct.pack(">III", TRACK_ID, sample_duration, AUDIO_SAMPLE_FLAGS))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_time))

    def moof(data_offset: int) -> bytes:
        trun = full_box(b"trun", 0, 0x000001 | 0x000200,
                        struct.pack(">Ii", len(payload), data_offset), sizes)
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)),
                   box(b"traf", tfhd, tfdt, trun))

    moof_size = len(moof(0))
    mdat = box(b"mdat", *payload)
    return head + moof(moof_size + 8) + mdat
