"""Probing an input with ffprobe before anything is decoded or published."""

from __future__ import annotations

import asyncio
import json
import math
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from packager import process
from packager.errors import InvalidInput

# Stills that containers carry as "video" streams (cover art) are not video.
_STILL_CODECS = frozenset({"mjpeg", "png", "bmp", "gif", "webp", "tiff"})


@dataclass(frozen=True)
class StreamInfo:
    index: int
    codec: str
    duration: float
    sample_rate: int = 0
    channels: int = 0
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0
    rotation: int = 0


@dataclass(frozen=True)
class ProbeResult:
    path: Path
    format_name: str
    duration: float
    size: int
    audio: StreamInfo | None
    video: StreamInfo | None

    @property
    def kind(self) -> str:
        return "video" if self.video is not None else "audio"


def _float(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) and f > 0 else 0.0


def _rate(value: Any) -> float:
    try:
        f = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(f) if f > 0 else 0.0


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(_float(abs(float(side["rotation"]))) or 0) % 360
    return int(_float(stream.get("tags", {}).get("rotate", 0))) % 360


def parse(path: Path, size: int, data: dict[str, Any]) -> ProbeResult:
    """Build a ProbeResult from ffprobe's JSON (pure; tested without ffprobe)."""
    fmt = data.get("format", {})
    audio = video = None
    for s in data.get("streams", []):
        kind = s.get("codec_type")
        disposition = s.get("disposition", {}) or {}
        if kind == "audio" and audio is None and _float(s.get("sample_rate")) > 0:
            audio = StreamInfo(index=int(s["index"]), codec=s.get("codec_name", "?"),
                               duration=_float(s.get("duration")),
                               sample_rate=int(_float(s.get("sample_rate"))),
                               channels=int(s.get("channels") or 0))
        elif (kind == "video" and video is None and not disposition.get("attached_pic")
              and s.get("codec_name") not in _STILL_CODECS and int(s.get("width") or 0) > 0):
            video = StreamInfo(index=int(s["index"]), codec=s.get("codec_name", "?"),
                               duration=_float(s.get("duration")),
                               width=int(s.get("width") or 0), height=int(s.get("height") or 0),
                               frame_rate=_rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate")),
                               rotation=_rotation(s))
    duration = _float(fmt.get("duration")) or max(
        (st.duration for st in (audio, video) if st is not None), default=0.0)
    return ProbeResult(path=path, format_name=str(fmt.get("format_name", "")), duration=duration,
                       size=size, audio=audio, video=video)


def wav_shortfall(head: bytes, size: int) -> int:
    """Bytes a RIFF/WAVE file is missing: its data chunk announces more than the file holds.

    0 when the header is not RIFF/WAVE, or when the writer left the size open
    (0 or 0xFFFFFFFF, as streaming TTS engines do).
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"data":
            if length in (0, 0xFFFFFFFF):
                return 0
            return max(0, pos + 8 + length - size)
        pos += 8 + length + (length & 1)
    return 0


def _head(path: Path, n: int = 65536) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


async def probe(path: Path, *, max_duration: float, kind: str = "auto") -> ProbeResult:
    """Probe `path`, or raise InvalidInput naming what is wrong with it."""
    name = path.name
    try:
        st = await asyncio.to_thread(path.stat)
    except FileNotFoundError:
        raise InvalidInput(f"{name}: no such file") from None
    except OSError as e:
        raise InvalidInput(f"{name}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{name}: not a regular file")
    size = st.st_size
    if size == 0:
        raise InvalidInput(f"{name}: file is empty")
    missing = wav_shortfall(await asyncio.to_thread(_head, path), size)
    if missing:
        raise InvalidInput(f"{name}: truncated: the WAV header announces {missing} bytes "
                           "more audio than the file holds")
    code, out, err = await process.run_json([
        process.FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json",
        "--", str(path)])
    if code != 0:
        detail = err.strip().splitlines()[-1] if err.strip() else "unreadable"
        detail = detail.replace(f"{path}: ", "").replace(str(path), name)
        raise InvalidInput(f"{name}: not a media file ffmpeg can read ({detail})")
    try:
        result = parse(path, size, json.loads(out or b"{}"))
    except (ValueError, KeyError) as e:
        raise InvalidInput(f"{name}: ffprobe output is unusable ({e})") from None
    if kind == "audio" and result.audio is None:
        raise InvalidInput(f"{name}: no audio stream")
    if kind == "video" and result.video is None:
        raise InvalidInput(f"{name}: no video stream")
    if result.audio is None and result.video is None:
        raise InvalidInput(f"{name}: no audio or video stream")
    if result.duration <= 0:
        raise InvalidInput(f"{name}: media has no duration (empty or corrupt)")
    if result.duration > max_duration:
        raise InvalidInput(f"{name}: {result.duration:.0f} s long, over the limit of "
                           f"{max_duration:.0f} s ([packager] max_duration)")
    if kind == "audio" and result.video is not None:
        result = ProbeResult(result.path, result.format_name, result.duration, result.size,
                             result.audio, None)
    return result
