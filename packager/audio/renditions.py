"""Audio renditions: parallel chunked AAC encode, then CMAF muxing on one shared grid.

Each chunk of the input is decoded once by one ffmpeg process that encodes every rung
(`asplit`), so N chunks use N cores. The raw ADTS outputs are then stitched per rung,
dropping priming and pre/post-roll frames, and cut into segments at the boundaries
`timeline.segment_boundaries` gives, identical for every rung.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from manifests import layout
from packager import process, timeline
from packager.audio import aac_cmaf, ffmpeg_args
from packager.audio.loudness import check_decoded
from packager.errors import InvalidInput, PackagerError

if TYPE_CHECKING:
    from settings import AudioRung


@dataclass(frozen=True)
class MuxedRendition:
    rung_id: str
    dir: Path  # holds init.mp4 and seg_NNNNN.m4s
    segment_count: int


def worker_count(configured: int) -> int:
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


async def encode(src: Path, stream_index: int, duration: float, rungs: list[AudioRung],
                 filters: list[str], aac_coder: str, workers: int, work: Path,
                 on_progress: Callable[[float], None], *, validate: bool = False,
                 ) -> tuple[list[timeline.Chunk], list[list[Path]]]:
    """Encode every rung of every chunk in parallel. Returns (chunks, files[chunk][rung]).

    With `validate`, the encode is also the check that the input decodes cleanly (when no
    loudness pass ran before it).
    """
    rates = [r.sample_rate for r in rungs]
    chunks = timeline.plan_chunks(duration, rates, workers)
    files = [[work / f"chunk{c.index}_{r.id}.aac" for r in rungs] for c in chunks]
    done = [0.0] * len(chunks)

    def tracker(i: int) -> Callable[[float], None]:
        def seen(t: float) -> None:
            done[i] = t
            on_progress(min(1.0, sum(done) / max(duration, 1e-6)))
        return seen

    async def one(c: timeline.Chunk) -> None:
        args = ffmpeg_args.audio_chunk_args(src, stream_index, c, rungs, filters, aac_coder,
                                            files[c.index])
        code, stderr = await process.run(args, on_time=tracker(c.index))
        if validate:
            expected = float(c.input_length) if c.input_length is not None else (
                duration - float(c.input_start))
            check_decoded(src.name, stderr, code, done[c.index], expected)
        elif code != 0:
            raise PackagerError(f"ffmpeg failed encoding audio: {stderr.strip()[-300:]}")

    await process.run_all(*(one(c) for c in chunks))
    return chunks, files


def _stitched(chunks: list[timeline.Chunk], paths: list[Path], rate: int,
              ) -> Iterator[tuple[aac_cmaf.AdtsConfig, bytes]]:
    """The frames of one rung across chunks, without priming and pre/post-roll."""
    for chunk, path in zip(chunks, paths, strict=True):
        skip = chunk.frames_to_skip(rate)
        keep = chunk.frames_to_keep(rate)
        with open(path, "rb") as f:
            for i, frame in enumerate(aac_cmaf.read_adts(f)):
                if i < skip:
                    continue
                if keep is not None and i >= skip + keep:
                    break
                yield frame


def mux(chunks: list[timeline.Chunk], files: list[Path], rung: AudioRung,
        boundaries: list[Fraction], out: Path) -> MuxedRendition:
    """Write init.mp4 and the segments of one rung into `out` (blocking; run in a thread)."""
    out.mkdir(parents=True, exist_ok=True)
    cuts = timeline.frame_cuts(boundaries, rung.sample_rate)
    cfg: aac_cmaf.AdtsConfig | None = None
    number = 1
    frame_index = 0
    seg_start = 0
    pending: list[bytes] = []
    total_bytes = 0
    peak_rate = 0.0

    def flush() -> None:
        nonlocal number, seg_start, total_bytes, peak_rate
        data = aac_cmaf.media_segment(number, seg_start * aac_cmaf.SAMPLES_PER_FRAME, pending)
        (out / layout.segment_name(number)).write_bytes(data)
        seconds = len(pending) * aac_cmaf.SAMPLES_PER_FRAME / rung.sample_rate
        peak_rate = max(peak_rate, 8 * len(data) / seconds)
        total_bytes += len(data)
        number += 1
        seg_start = frame_index
        pending.clear()

    next_cut = iter(cuts)
    cut = next(next_cut, None)
    for frame_cfg, frame in _stitched(chunks, files, rung.sample_rate):
        if cfg is None:
            cfg = frame_cfg
        elif frame_cfg != cfg:
            raise PackagerError("encoder changed its AAC configuration mid-stream")
        if cut is not None and frame_index == cut:
            flush()
            cut = next(next_cut, None)
        pending.append(frame)
        frame_index += 1
    if cfg is None:
        raise InvalidInput("no audio frames came out of the encoder (silent or empty input)")
    if pending:
        flush()
    duration = frame_index * aac_cmaf.SAMPLES_PER_FRAME / rung.sample_rate
    avg = int(8 * total_bytes / max(duration, 1e-6))
    channels = cfg.channel_config or rung.channels
    (out / layout.INIT).write_bytes(aac_cmaf.init_segment(cfg, channels, avg, int(peak_rate)))
    return MuxedRendition(rung.id, out, number - 1)
