"""The intake of a live stream: the producer's bytes, in its format, to float PCM.

    chunks ─> `auto`: sniffed from the first bytes
           ─> raw PCM s16le, or a streamed WAV (its header read first): whole frames to float
           ─> MP3, Ogg/Opus, AAC ADTS: an ffmpeg decoder (stdin) ─> float PCM (stdout)
           ─> `feed` (the stream: leveller, encoder)

The encoder starts once the rate and channels are known: at once for declared PCM, after
the WAV header, or at the decoder's fixed output (DECODED_RATE, DECODED_CHANNELS). A
chunk that cannot be read raises InvalidInput naming the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import numpy as np

from packager.errors import InvalidInput
from packager.live import formats
from packager.live.encoder import DECODED_CHANNELS, DECODED_RATE, LiveDecoder

_F32 = 4  # bytes per float sample


class Intake:
    """One stream's format handling. `start_encoder(rate, channels)` is called once, before
    the first `feed(samples)` (interleaved float32); `heard()` whenever decoded audio
    comes out of the decoder (the producer is alive)."""

    def __init__(self, fmt: formats.StreamFormat, asset_id: str,
                 start_encoder: Callable[[int, int], Awaitable[None]],
                 feed: Callable[[np.ndarray], Awaitable[None]],
                 heard: Callable[[], None]) -> None:
        self.fmt = fmt
        self.asset_id = asset_id
        self._start_encoder = start_encoder
        self._feed = feed
        self._heard = heard
        self.channels = 0  # of the PCM fed to the encoder; 0 until it started
        self.pcm_bytes = 0  # PCM bytes read so far (the container check looks at the first)
        self.decoder: LiveDecoder | None = None
        self._task: asyncio.Task[None] | None = None
        self._head = b""  # bytes held until the format is known (auto, WAV header)
        self._odd = b""  # PCM bytes short of a whole frame

    @property
    def started(self) -> bool:
        return self.channels > 0

    @property
    def unrecognised(self) -> bool:
        """`auto` bytes were held but never recognised."""
        return self.fmt.codec == "auto" and bool(self._head) and not self.started

    async def open(self) -> None:
        """Declared raw PCM knows its rate and channels before any byte."""
        if self.fmt.codec == "pcm_s16le":
            await self._begin(self.fmt.sample_rate, self.fmt.channels)

    async def _begin(self, rate: int, channels: int) -> None:
        self.channels = channels
        await self._start_encoder(rate, channels)

    async def take(self, data: bytes) -> None:
        codec = self.fmt.codec
        if codec == "auto":
            self._head += data
            kind = formats.sniff(self._head)
            if kind is None:
                if len(self._head) >= formats.SNIFF_BYTES:
                    raise InvalidInput("the stream is not WAV, MP3, Ogg/Opus or AAC ADTS "
                                       "(declare raw PCM as pcm_s16le with its rate and "
                                       "channels)")
                return
            self.fmt = formats.StreamFormat(kind)
            data, self._head = self._head, b""
            codec = kind
        if codec == "pcm_s16le":
            if self.pcm_bytes == 0 and not self._odd:
                looks = formats.looks_like_container(data)
                if looks:
                    raise InvalidInput(f"declared raw PCM but the stream starts like {looks}")
            await self._pcm16(data)
        elif codec == "wav":
            if not self.started:
                self._head += data
                header = formats.parse_wav_header(self._head)
                if header is None:
                    return
                await self._begin(header.sample_rate, header.channels)
                data, self._head = self._head[header.data_offset:], b""
            await self._pcm16(data)
        else:
            if self.decoder is None:
                await self._start_decoder(codec)
            assert self.decoder is not None
            try:
                await self.decoder.write(data)
            except (ConnectionError, BrokenPipeError):
                raise InvalidInput(f"the {codec} decoder stopped: "
                                   + "; ".join(self.decoder.errors[-2:])) from None

    async def _pcm16(self, data: bytes) -> None:
        block = 2 * self.channels
        data = self._odd + data
        whole = len(data) - len(data) % block
        self._odd = data[whole:]
        if whole:
            self.pcm_bytes += whole
            samples = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
            await self._feed(samples)

    async def _start_decoder(self, codec: str) -> None:
        dec = LiveDecoder(codec)
        await dec.start()
        self.decoder = dec
        await self._begin(DECODED_RATE, DECODED_CHANNELS)
        self._task = asyncio.create_task(self._read_decoder(dec),
                                         name=f"live-decoder-{self.asset_id}")

    async def _read_decoder(self, dec: LiveDecoder) -> None:
        odd = b""
        block = _F32 * DECODED_CHANNELS
        async for chunk in dec.output():
            data = odd + chunk
            whole = len(data) - len(data) % block
            odd = data[whole:]
            if whole:
                self._heard()
                await self._feed(np.frombuffer(data[:whole], dtype="<f4"))
        await dec.wait()

    async def finish(self) -> None:
        """End of input: the decoder (if any) flushes what it holds into `feed`."""
        if self.decoder is not None:
            await self.decoder.close_input()
        if self._task is not None:
            await self._task

    def kill(self) -> None:
        if self.decoder is not None:
            self.decoder.kill()
        if self._task is not None:
            self._task.cancel()

    async def reap(self) -> None:
        """After `kill`: the reader task and the process are gone (no transport left)."""
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task
        if self.decoder is not None and self.decoder.proc is not None:
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(5):
                    await self.decoder.proc.wait()
