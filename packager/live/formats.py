"""What a TTS engine pushes (pure): the declared format, recognising `auto`, streamed WAV.

Engines emit raw PCM s16le with a declared rate and channels (OpenAI `pcm` 24 kHz mono,
Piper 22.05 kHz, ElevenLabs `pcm_16000`..`pcm_44100`), a streamed WAV whose header gives
no length, MP3, Ogg/Opus or AAC ADTS. PCM and WAV are read here; the compressed ones go
through an ffmpeg decoder (packager.live.decoder).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from packager.errors import InvalidInput

CODECS = ("auto", "pcm_s16le", "wav", "mp3", "opus", "aac")
COMPRESSED = ("mp3", "opus", "aac")
PCM_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
SNIFF_BYTES = 4096  # `auto` decides within this many bytes, or refuses
WAV_HEADER_MAX = 64 * 1024
# ffmpeg demuxer of each compressed codec
DEMUXERS = {"mp3": "mp3", "opus": "ogg", "aac": "aac"}


@dataclass(frozen=True)
class StreamFormat:
    codec: str  # one of CODECS
    sample_rate: int = 0  # PCM: required; others: 0 (read from the stream)
    channels: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"codec": self.codec, "sample_rate": self.sample_rate or None,
                "channels": self.channels or None}


def parse_format(data: Any) -> StreamFormat:
    """The `format` object of POST /v1/live, validated; raises InvalidInput."""
    if data is None:
        return StreamFormat("auto")
    if not isinstance(data, dict):
        raise InvalidInput("format: expected an object like {\"codec\": \"pcm_s16le\", "
                           "\"sample_rate\": 24000, \"channels\": 1}")
    unknown = set(data) - {"codec", "sample_rate", "channels"}
    if unknown:
        raise InvalidInput(f"format: unknown field {sorted(unknown)[0]!r}")
    codec = data.get("codec", "auto")
    if codec not in CODECS:
        raise InvalidInput(f"format.codec: {codec!r} is not one of {', '.join(CODECS)}")
    rate = data.get("sample_rate")
    channels = data.get("channels")
    for name, value in (("sample_rate", rate), ("channels", channels)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput(f"format.{name}: expected an integer")
    if codec == "pcm_s16le":
        if rate is None or channels is None:
            raise InvalidInput("format: raw PCM needs sample_rate and channels")
        if rate not in PCM_RATES:
            raise InvalidInput(f"format.sample_rate: {rate} is not one of "
                               f"{', '.join(map(str, PCM_RATES))}")
        if channels not in (1, 2):
            raise InvalidInput("format.channels: must be 1 or 2")
        return StreamFormat(codec, rate, channels)
    return StreamFormat(codec)


def sniff(head: bytes) -> str | None:
    """The container/codec of a stream from its first bytes, None when unsure yet."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "opus"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS: sync 12 bits, layer 00
            return "aac"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:  # MPEG audio, layer I-III
            return "mp3"
    return None


def looks_like_container(head: bytes) -> str | None:
    """A raw-PCM stream whose first bytes are a known container's magic was declared
    wrong (a WAV or MP3 sent as pcm_s16le); name what it looks like."""
    kind = sniff(head[:16])
    return kind if kind in ("wav", "opus") or head[:3] == b"ID3" else None


@dataclass
class WavHeader:
    sample_rate: int
    channels: int
    data_offset: int


def parse_wav_header(head: bytes) -> WavHeader | None:
    """The PCM layout of a (streamed) WAV, or None while the header is incomplete.

    A streaming writer leaves the RIFF and data sizes at 0 or 0xFFFFFFFF: the data
    chunk is taken to run to the end of the stream whatever its size says.
    """
    if len(head) < 12:
        return None
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise InvalidInput("not a WAV stream (no RIFF/WAVE header)")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(head):
        chunk, length = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"data":
            if fmt is None:
                raise InvalidInput("WAV stream: data chunk before its fmt chunk")
            tag, channels, rate, bits = fmt
            if tag not in (1, 0xFFFE) or bits != 16:
                raise InvalidInput(f"WAV stream: only 16-bit PCM is supported (format {tag}, "
                                   f"{bits} bits)")
            if rate not in PCM_RATES or channels not in (1, 2):
                raise InvalidInput(f"WAV stream: {rate} Hz, {channels} channels is not "
                                   "supported (mono or stereo at a standard rate)")
            return WavHeader(rate, channels, pos + 8)
        if pos + 8 + length > len(head):
            if len(head) > WAV_HEADER_MAX:
                raise InvalidInput("WAV stream: header larger than 64 KiB")
            return None
        if chunk == b"fmt ":
            if length < 16:
                raise InvalidInput("WAV stream: short fmt chunk")
            tag, channels, rate = struct.unpack_from("<HHI", head, pos + 8)
            bits = struct.unpack_from("<H", head, pos + 22)[0]
            fmt = (tag, channels, rate, bits)
        pos += 8 + length + (length & 1)
    if len(head) > WAV_HEADER_MAX:
        raise InvalidInput("WAV stream: header larger than 64 KiB")
    return None
