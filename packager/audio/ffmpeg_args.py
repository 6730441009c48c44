"""ffmpeg argument lists (pure). Never a shell string."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from packager.process import FFMPEG
from packager.timeline import Chunk

if TYPE_CHECKING:  # settings are plain frozen dataclasses; no runtime import of the CLI layer
    from settings import AudioRung

COMMON = [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+error",
          "-progress", "pipe:1", "-y"]


def _seconds(t: Fraction) -> str:
    return f"{float(t):.6f}"


def audio_filter_graph(stream_index: int, pre_filters: list[str], rates: list[int]) -> str:
    """Decode once, apply the loudness filters once, split to one branch per rendition."""
    chain = ",".join([*pre_filters, f"asplit={len(rates)}"]) if len(rates) > 1 else ",".join(
        pre_filters or ["anull"])
    outs = "".join(f"[s{i}]" for i in range(len(rates))) if len(rates) > 1 else "[s0]"
    graph = [f"[0:{stream_index}]{chain}{outs}"]
    for i, rate in enumerate(rates):
        graph.append(f"[s{i}]aresample={rate}[o{i}]")
    return ";".join(graph)


def audio_chunk_args(src: Path, stream_index: int, chunk: Chunk, rungs: list[AudioRung],
                     pre_filters: list[str], aac_coder: str, outputs: list[Path]) -> list[str]:
    """One process: decode a chunk of the input, encode every rung to raw ADTS files."""
    args = list(COMMON)
    if chunk.input_start > 0:
        args += ["-ss", _seconds(chunk.input_start)]
    if chunk.input_length is not None:
        args += ["-t", _seconds(chunk.input_length)]
    args += ["-i", str(src), "-filter_complex",
             audio_filter_graph(stream_index, pre_filters, [r.sample_rate for r in rungs])]
    for i, (rung, out) in enumerate(zip(rungs, outputs, strict=True)):
        args += ["-map", f"[o{i}]", "-c:a", "aac", "-aac_coder", aac_coder,
                 "-b:a", str(rung.bitrate), "-ac", str(rung.channels),
                 "-f", "adts", str(out)]
    return args


def plain_audio_ladder_args(src: Path, rungs: list[AudioRung], aac_coder: str,
                            out_dir: Path, segment_duration: float) -> list[str]:
    """The reference a user would type: one ffmpeg, every rung, ffmpeg's own HLS fMP4
    segmenter (used by the benchmark as the baseline, never by the packager)."""
    args = [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y",
            "-i", str(src), "-filter_complex",
            audio_filter_graph(0, [], [r.sample_rate for r in rungs])]
    for i, rung in enumerate(rungs):
        d = out_dir / rung.id
        args += ["-map", f"[o{i}]", "-c:a", "aac", "-aac_coder", aac_coder,
                 "-b:a", str(rung.bitrate), "-ac", str(rung.channels),
                 "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", str(segment_duration),
                 "-hls_playlist_type", "vod", "-hls_fmp4_init_filename", "init.mp4",
                 "-hls_segment_filename", str(d / "seg_%05d.m4s"), str(d / "index.m3u8")]
    return args


def faststart_remux_args(inputs: list[Path], out: Path) -> list[str]:
    """Concatenate an init segment and its media segments into one progressive MP4 with
    the index (moov) at the front."""
    concat = "concat:" + "|".join(str(p) for p in inputs)
    return [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+error", "-y",
            "-i", concat, "-map", "0", "-c", "copy", "-movflags", "+faststart",
            "-f", "mp4", str(out)]


def opus_saver_args(src: Path, stream_index: int, pre_filters: list[str], bitrate: int,
                    frame_ms: int, out: Path) -> list[str]:
    """The data-saver rung: the whole input, through the same loudness filters as the AAC
    rungs, to mono 48 kHz Opus (libopus) in Ogg, one packet every `frame_ms`.

    One process over the whole input rather than one per chunk: Opus frames depend on
    the decoder's state from the frames before them, so Opus encoded in pieces and
    stitched would glitch at every seam. libopus at 32 kb/s mono costs about one AAC
    rung's CPU (10 min of speech: 8.7 s against 10.3 s for the 128 kb/s rung), so beside
    the three-rung AAC chunks it sets the pace only when there are more cores than chunks
    can fill (docs/data-saver.md).
    """
    chain = ",".join([*pre_filters, f"aresample={48_000}"])
    return [*COMMON, "-i", str(src), "-filter_complex", f"[0:{stream_index}]{chain}[o]",
            "-map", "[o]", "-ac", "1", "-c:a", "libopus", "-b:a", str(bitrate),
            "-frame_duration", str(frame_ms), "-map_metadata", "-1", "-f", "ogg", str(out)]
