"""ffmpeg argument lists for video (pure). Never a shell string.

One process decodes the input once, converts it to a constant frame rate once, and splits
the picture to every rendition (scaled and encoded by its own libx264), to the poster
(one frame) and to the thumbnail sprite sheets (one frame every interval, tiled).
Each rendition is written as one fragmented MP4 with a fragment at every keyframe;
`video_split` cuts it into CMAF segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from packager.audio.ffmpeg_args import COMMON
from packager.process import FFMPEG
from packager.video.ladder import VideoOutput

# Fragmented MP4 as CMAF wants it: moov up front, a moof per keyframe with
# default-base-is-moof, trun version 1 with negative composition offsets so that the
# first frame's presentation time is its decode time (no edit list for a player to
# honour or ignore), no mfra trailer.
FRAGMENTED_MOVFLAGS = "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets+cmaf+skip_trailer"


@dataclass(frozen=True)
class StillsPlan:
    """The poster and the thumbnail sheets produced by the encode's extra branches."""

    poster_frame: int  # frame index (at the output rate) of the poster
    poster_size: tuple[int, int]
    thumb_every: int  # frames (at the output rate) between thumbnails
    thumb_size: tuple[int, int]
    columns: int
    rows: int


def x264_args(o: VideoOutput, preset: str, gop: int, keyframes: str,
              fps: Fraction, threads: int = 0) -> list[str]:
    """Encoder settings of one rung: bitrate-capped VBV, closed GOPs, an IDR at every
    segment boundary (`keyframes`), none anywhere else (no scene-cut keyframes)."""
    args = ["-c:v", "libx264", "-preset", preset, "-profile:v", o.profile,
            "-pix_fmt", "yuv420p",
            "-b:v", str(o.bitrate), "-maxrate", str(o.maxrate), "-bufsize", str(o.bufsize),
            "-g", str(gop), "-keyint_min", "1", "-sc_threshold", "0",
            "-forced-idr", "1", "-force_key_frames", keyframes,
            "-x264-params", "open-gop=0",
            "-fps_mode", "cfr", "-r", _rate(fps)]
    if o.b_frames:
        args += ["-bf", "3"]
    if threads:
        args += ["-threads", str(threads)]
    return args


def _rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}" if fps.denominator != 1 else str(fps.numerator)


def filter_graph(stream_index: int, outputs: list[VideoOutput], fps: Fraction,
                 stills: StillsPlan | None) -> str:
    """Decode → constant rate → split: one scaled branch per rendition (+ stills)."""
    n = len(outputs) + (2 if stills else 0)
    labels = [f"[s{i}]" for i in range(n)]
    head = f"[0:{stream_index}]fps=fps={_rate(fps)},format=yuv420p"
    head += f",split={n}" + "".join(labels) if n > 1 else "[s0]"
    graph = [head]
    for i, o in enumerate(outputs):
        graph.append(f"[s{i}]scale={o.width}:{o.height},setsar=1[v{i}]")
    if stills:
        p, t = len(outputs), len(outputs) + 1
        pw, ph = stills.poster_size
        tw, th = stills.thumb_size
        graph.append(f"[s{p}]trim=start_frame={stills.poster_frame}"
                     f":end_frame={stills.poster_frame + 1},scale={pw}:{ph},setsar=1[poster]")
        # every n-th frame of the constant-rate stream: exact, and frame 0 included
        graph.append(f"[s{t}]select='not(mod(n,{stills.thumb_every}))',scale={tw}:{th},"
                     f"setsar=1,tile={stills.columns}x{stills.rows}[thumbs]")
    return ";".join(graph)


def encode_args(src: Path, stream_index: int, outputs: list[VideoOutput], files: list[Path],
                fps: Fraction, preset: str, gop: int, keyframes: str,
                stills: StillsPlan | None = None, poster: Path | None = None,
                sheets: Path | None = None, threads: int = 0) -> list[str]:
    """The one encode process of a video asset: every rendition as a fragmented MP4,
    plus the poster JPEG and the sprite sheets (`sheets` is a %03d pattern)."""
    args = [*COMMON, "-i", str(src), "-filter_complex",
            filter_graph(stream_index, outputs, fps, stills)]
    for i, (o, out) in enumerate(zip(outputs, files, strict=True)):
        args += ["-map", f"[v{i}]", *x264_args(o, preset, gop, keyframes, fps, threads),
                 "-map_metadata", "-1", "-map_chapters", "-1",
                 "-movflags", FRAGMENTED_MOVFLAGS, "-f", "mp4", str(out)]
    if stills and poster and sheets:
        args += ["-map", "[poster]", "-fps_mode", "passthrough", "-q:v", "3",
                 "-f", "image2", "-update", "1", str(poster),
                 "-map", "[thumbs]", "-fps_mode", "passthrough", "-q:v", "5",
                 "-f", "image2", "-start_number", "1", str(sheets)]
    return args


def plain_ladder_args(src: Path, stream_index: int, outputs: list[VideoOutput], fps: Fraction,
                      preset: str, gop: int, keyframes: str, out_dir: Path,
                      segment_duration: float, audio_bitrate: int | None,
                      threads: int = 0) -> list[str]:
    """The reference a user would type: one ffmpeg, split + scale, the same x264
    settings, ffmpeg's own HLS fMP4 segmenter per rendition, plus one AAC rendition
    (used by the benchmark as the baseline, never by the packager)."""
    args = [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y",
            "-i", str(src), "-filter_complex", filter_graph(stream_index, outputs, fps, None)]

    def hls(d: Path) -> list[str]:
        return ["-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", str(segment_duration),
                "-hls_playlist_type", "vod", "-hls_fmp4_init_filename", "init.mp4",
                "-start_number", "1", "-hls_segment_filename", str(d / "seg_%05d.m4s"),
                str(d / "index.m3u8")]
    for i, o in enumerate(outputs):
        args += ["-map", f"[v{i}]", *x264_args(o, preset, gop, keyframes, fps, threads),
                 *hls(out_dir / o.id)]
    if audio_bitrate:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(audio_bitrate), "-ar", "48000",
                 "-ac", "2", *hls(out_dir / "audio")]
    return args


def download_args(video: Path, audio: Path | None, out: Path) -> list[str]:
    """One progressive MP4, index in front, stream-copied from a video rendition's
    fragmented MP4 and (when there is audio) the audio rendition's init + segments
    concatenated into one file."""
    args = [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+error", "-y",
            "-i", str(video)]
    if audio is not None:
        args += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0"]
    else:
        args += ["-map", "0:v:0"]
    return args + ["-c", "copy", "-map_metadata", "-1", "-movflags", "+faststart",
                   "-f", "mp4", str(out)]
