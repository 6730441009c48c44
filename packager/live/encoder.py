"""The ffmpeg processes of a live stream: one decoder for compressed input, one encoder.

The encoder reads float PCM on stdin (already levelled), limits true peaks with a 5 ms
look-ahead limiter, splits once and writes every rung of the ladder as ADTS to its own
pipe, flushing each packet as it is made, so a part can be cut as soon as its last
frame exists. From a mono source a stereo rung is encoded in mono (at -3 dB, the level
of each channel when ffmpeg duplicates mono into stereo, so the loudness is the same)
and its frames are made stereo afterwards (packager.live.upmix): less than half the
encoder's work for the same two channels. The decoder turns MP3, Ogg/Opus or AAC ADTS on stdin into float PCM at a
fixed rate on stdout. Both are argument lists run with asyncio, never a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

from packager.audio import aac_cmaf
from packager.audio.loudness import LIMITER, LIMITER_MARGIN_DB
from packager.live.formats import DEMUXERS
from packager.live.upmix import UpmixError, mono_to_stereo
from packager.process import FFMPEG, die_with_parent

if TYPE_CHECKING:
    from settings import AudioRung

DECODED_RATE = 48_000
DECODED_CHANNELS = 2
_LOW_DELAY = ["-fflags", "+nobuffer", "-flags", "+low_delay", "-probesize", "32",
              "-analyzeduration", "0"]
# ffmpeg duplicates mono into stereo at -3 dB a channel (swresample's centre mix level).
_MONO_IN_STEREO = "volume=volume=0.7071067811865476:precision=float"


def upmixed(channels: int, rung: AudioRung) -> bool:
    """Whether the rung is encoded in mono and made stereo afterwards."""
    return channels == 1 and rung.channels == 2


def _filter_graph(filters: list[str], rates: list[int], quieter: list[bool]) -> str:
    """Decode once, limit once, split to one branch per rung (ffmpeg_args'
    `audio_filter_graph`, plus the -3 dB of a rung upmixed after encoding)."""
    n = len(rates)
    chain = ",".join([*filters, f"asplit={n}"] if n > 1 else (filters or ["anull"]))
    graph = [f"[0:0]{chain}" + "".join(f"[s{i}]" for i in range(n))]
    for i, (rate, q) in enumerate(zip(rates, quieter, strict=True)):
        graph.append(f"[s{i}]aresample={rate}" + (f",{_MONO_IN_STEREO}" if q else "")
                     + f"[o{i}]")
    return ";".join(graph)


def encoder_args(rate: int, channels: int, rungs: Sequence[AudioRung], aac_coder: str,
                 true_peak: float | None, fds: Sequence[int]) -> list[str]:
    filters = []
    if true_peak is not None:
        limit = 10 ** ((true_peak - LIMITER_MARGIN_DB) / 20)
        filters.append(LIMITER.format(limit=limit))
    mono = [upmixed(channels, r) for r in rungs]
    args = [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+error",
            *_LOW_DELAY, "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0",
            "-filter_complex", _filter_graph(filters, [r.sample_rate for r in rungs], mono)]
    for i, (rung, fd) in enumerate(zip(rungs, fds, strict=True)):
        args += ["-map", f"[o{i}]", "-c:a", "aac", "-aac_coder", aac_coder,
                 "-b:a", str(rung.bitrate)]
        if mono[i]:  # no per-channel tools the zero side channel would lack (upmix)
            args += ["-ac", "1", "-aac_tns", "0", "-aac_pns", "0"]
        else:
            args += ["-ac", str(rung.channels)]
        args += ["-flush_packets", "1", "-f", "adts", f"pipe:{fd}"]
    return args


def decoder_args(codec: str) -> list[str]:
    return [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+error",
            *_LOW_DELAY, "-f", DEMUXERS[codec], "-i", "pipe:0", "-map", "0:a:0",
            "-f", "f32le", "-ar", str(DECODED_RATE), "-ac", str(DECODED_CHANNELS),
            "-flush_packets", "1", "pipe:1"]


def parse_adts(buf: bytes | bytearray) -> tuple[list[tuple[aac_cmaf.AdtsConfig, bytes]], int]:
    """The whole ADTS frames at the start of `buf` (ISO/IEC 13818-7 §6.2) and the bytes
    they take; a frame cut short waits for the rest."""
    out = []
    pos = 0
    n = len(buf)
    while n - pos >= 7:
        b1, b2, b3, b4, b5 = buf[pos + 1], buf[pos + 2], buf[pos + 3], buf[pos + 4], buf[pos + 5]
        if buf[pos] != 0xFF or b1 & 0xF6 != 0xF0:
            raise aac_cmaf.AdtsError("lost ADTS sync in the encoder's output")
        length = ((b3 & 3) << 11) | (b4 << 3) | (b5 >> 5)
        if length < 7 or pos + length > n:
            if length < 7:
                raise aac_cmaf.AdtsError("bad ADTS frame length")
            break
        skip = 7 if b1 & 1 else 9
        cfg = aac_cmaf.AdtsConfig((b2 >> 6) + 1, (b2 >> 2) & 0xF, ((b2 & 1) << 2) | (b3 >> 6))
        out.append((cfg, bytes(buf[pos + skip:pos + length])))
        pos += length
    return out, pos


def _factory(protocol: asyncio.StreamReaderProtocol) -> Callable[[], asyncio.StreamReaderProtocol]:
    return lambda: protocol


async def _stderr_lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        if len(into) < 200:
            into.append(line.decode("utf-8", "replace").rstrip())


class _Pipeline:
    """An ffmpeg fed on stdin: writes wait while its pipe is full (backpressure), its error
    lines are kept, and it can be ended (input closed), waited for, or killed."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.errors: list[str] = []
        self._stderr_task: asyncio.Task[None] | None = None

    def _follow_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        self._stderr_task = asyncio.create_task(_stderr_lines(self.proc.stderr, self.errors))

    async def write(self, data: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_input(self) -> None:
        """End of input: ffmpeg flushes what it holds and exits."""
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                self.proc.stdin.close()
                await self.proc.stdin.wait_closed()

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._stderr_task is not None:
            await self._stderr_task
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


class LiveEncoder(_Pipeline):
    """One ffmpeg encoding every rung; `frames(i)` yields rung i's ADTS frames."""

    def __init__(self, rate: int, channels: int, rungs: Sequence[AudioRung], aac_coder: str,
                 true_peak: float | None) -> None:
        super().__init__()
        self.rate = rate
        self.channels = channels
        self.rungs = list(rungs)
        self.aac_coder = aac_coder
        self.true_peak = true_peak
        self.readers: list[asyncio.StreamReader] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        pipes = [os.pipe() for _ in self.rungs]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *die_with_parent(encoder_args(self.rate, self.channels, self.rungs,
                                              self.aac_coder, self.true_peak,
                                              [w for _r, w in pipes])),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, pass_fds=[w for _r, w in pipes])
        finally:
            for _r, w in pipes:
                os.close(w)
        for r, _w in pipes:
            reader = asyncio.StreamReader(limit=1 << 20)
            protocol = asyncio.StreamReaderProtocol(reader)
            await loop.connect_read_pipe(_factory(protocol), os.fdopen(r, "rb", buffering=0))
            self.readers.append(reader)
        self._follow_stderr()

    async def frames(self, index: int
                     ) -> AsyncIterator[list[tuple[aac_cmaf.AdtsConfig, bytes]]]:
        """Rung `index`'s ADTS frames as lists of (config, raw AAC frame): every whole
        frame that has arrived, at each wake-up, until the encoder ends."""
        reader = self.readers[index]
        stereo = upmixed(self.channels, self.rungs[index])
        buf = bytearray()
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                if buf:
                    raise aac_cmaf.AdtsError("encoder output ends inside an ADTS frame")
                return
            buf += chunk
            out, used = parse_adts(buf)
            del buf[:used]
            if out and stereo:
                try:
                    out = [(aac_cmaf.AdtsConfig(cfg.profile, cfg.sample_rate_index, 2),
                            mono_to_stereo(frame)) for cfg, frame in out]
                except UpmixError as e:
                    raise aac_cmaf.AdtsError(str(e)) from None
            if out:
                yield out


class LiveDecoder(_Pipeline):
    """One ffmpeg decoding a compressed stream to float PCM (DECODED_RATE, stereo)."""

    def __init__(self, codec: str) -> None:
        super().__init__()
        self.codec = codec

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *die_with_parent(decoder_args(self.codec)), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._follow_stderr()

    async def output(self) -> AsyncIterator[bytes]:
        assert self.proc is not None and self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(64 * 1024):
            yield chunk
