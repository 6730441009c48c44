"""Video assets: an H.264 ladder with an AAC audio group, I-frame playlists, a poster,
scrubbing thumbnails and a progressive download.

    probe (done) → plan the ladder and the segment grid
      ├─ one ffmpeg: decode once → constant rate → split → scale + x264 per rung
      │                                            → poster frame, thumbnail sheets
      └─ audio path (loudness, AAC, priming-free) — concurrently
    → cut each rung's fragmented MP4 into CMAF segments on the grid (video_split)
    → mux the audio on the video's own cut times → read every rendition back
    → download MP4 (stream copy, faststart) → playlists, I-frame playlists, MPD, VTT
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifests import layout
from manifests.model import Presentation, Rendition
from packager import process, publish, readback, record, timeline
from packager.audio import loudness
from packager.audio import renditions as audio
from packager.errors import InvalidInput, PackagerError
from packager.probe import ProbeResult
from packager.video.ffmpeg_args import StillsPlan, download_args, encode_args
from packager.video.ladder import (
    VideoOutput,
    display_size,
    gop_frames,
    keyframe_expr,
    output_frame_rate,
    plan_ladder,
)
from packager.video.split import SplitResult, split
from packager.video.thumbs import plan_sprites, poster_frame, poster_size, sheet_name, vtt

if TYPE_CHECKING:
    from settings import AudioRung, PackagerConfig

Phase = Callable[[str, float], Callable[[float], None]]
Built = tuple[Presentation, str, publish.Bundle, str, dict[str, Any]]

AUDIO_ID = "audio"
_ENCODE, _FINISH = 0.85, 0.05  # the pipeline's publish phase takes the last 0.10
# ffmpeg failures that are the machine's fault, not the input's
_ENVIRONMENT_ERRORS = ("No space left", "Permission denied", "Cannot allocate memory",
                       "Unknown encoder", "Killed")


def _audio_rung(cfg: PackagerConfig) -> AudioRung:
    from settings import AudioRung  # plain dataclass; no CLI import at module load

    return AudioRung(AUDIO_ID, cfg.video_audio_bitrate, 48_000, 2)


async def build(info: ProbeResult, cfg: PackagerConfig, work: Path, asset_id: str,
                phase: Phase) -> Built:
    """Encode, segment and describe a video input (see the module docstring)."""
    v = info.video
    assert v is not None
    width, height = display_size(v)
    outputs = plan_ladder(cfg.video_ladder, width, height)
    if not outputs:
        raise PackagerError("packager.video_ladder is empty")
    fps = output_frame_rate(v.frame_rate)
    planned = v.duration or info.duration
    seg = Fraction(cfg.segment_duration).limit_denominator(1000)
    cuts = timeline.segment_boundaries(Fraction(planned).limit_denominator(1_000_000), seg)
    sprites = plan_sprites(planned, cfg.thumbnail_interval, cfg.thumbnail_width,
                           outputs[0].width, outputs[0].height)
    stills = StillsPlan(poster_frame(planned, float(fps)),
                        poster_size((outputs[0].width, outputs[0].height)),
                        max(1, round(sprites.interval * fps)), (sprites.width, sprites.height),
                        sprites.columns, sprites.rows)
    enc = work / "enc"
    enc.mkdir(parents=True, exist_ok=True)
    files = [enc / f"{o.id}.mp4" for o in outputs]
    poster, sheets = enc / layout.POSTER, enc / "thumbs_%03d.jpg"
    args = encode_args(info.path, v.index, outputs, files, fps, cfg.x264_preset,
                       gop_frames(cfg.segment_duration, fps), keyframe_expr(cuts, seg, fps),
                       stills, poster, sheets)
    report = phase("encode", _ENCODE)
    extra: dict[str, Any] = {}

    async def encode_video() -> None:
        code, stderr = await process.run(
            args, on_time=lambda t: report(t / planned if planned > 0 else 0.0))
        if code != 0:
            _raise_ffmpeg(info.path.name, stderr, code)

    audio_job = _encode_audio(info, cfg, work / "aenc", extra) if info.audio is not None else None
    results = await process.run_all(encode_video(), *([audio_job] if audio_job else []))
    report(1.0)
    finish = phase("mux", _FINISH)

    version = publish.new_version()
    bundle = publish.Bundle()
    out_root = work / "out"
    splits: list[SplitResult] = []
    videos: list[Rendition] = []
    for o, f in zip(outputs, files, strict=True):
        rel_dir = layout.rendition_dir(version, o.id)
        s = await asyncio.to_thread(split, f, out_root / o.id, cuts, cfg.segment_duration)
        splits.append(s)
        rate = s.frame_rate if abs(s.frame_rate - fps) > fps / 200 else fps
        videos.append(await asyncio.to_thread(readback.read_rendition, o.id, out_root / o.id,
                                              rel_dir, frame_rate=float(rate)))
        bundle.files += [(f"{rel_dir}/{p.name}", p) for p in sorted((out_root / o.id).iterdir())]
    _check_aligned(videos)
    _check_complete(info, videos[0].duration)
    finish(0.4)

    renditions = list(videos)
    audio_file: Path | None = None
    if audio_job is not None:
        chunks, chunk_files, audio_duration = results[1]
        first = splits[0]
        boundaries = [Fraction(t, first.timescale) for t in first.starts[1:]]
        boundaries += _beyond(Fraction(first.duration, first.timescale),
                              Fraction(audio_duration).limit_denominator(1_000_000), seg)
        a_out = out_root / AUDIO_ID
        rung = _audio_rung(cfg)
        await asyncio.to_thread(audio.mux, chunks, [cf[0] for cf in chunk_files], rung,
                                boundaries, a_out)
        a_rel = layout.rendition_dir(version, AUDIO_ID)
        a = await asyncio.to_thread(readback.read_rendition, AUDIO_ID, a_out, a_rel)
        renditions.append(a)
        bundle.files += [(f"{a_rel}/{p.name}", p) for p in sorted(a_out.iterdir())]
        audio_file = work / "audio-full.mp4"
        await asyncio.to_thread(_concatenate, a_out, a, audio_file)
    finish(0.6)

    # The progressive download: the middle rung's video (its whole fragmented MP4 is its
    # init + segments) and the audio, stream-copied with the index in front.
    vdir = layout.version_dir(version)
    middle = len(outputs) // 2
    download_rel = f"{vdir}/{layout.download_name('video')}"
    download = work / "download.mp4"
    code, stderr = await process.run(download_args(files[middle], audio_file, download))
    if code != 0:
        raise PackagerError(f"ffmpeg failed writing the download: {stderr.strip()[-300:]}")
    bundle.files.append((download_rel, download))
    finish(0.8)

    # Poster and thumbnails, made by the encode's extra branches.
    if not poster.exists() or poster.stat().st_size == 0:
        await _fallback_poster(files[0], outputs[0], stills.poster_size, poster)
    bundle.files.append((f"{vdir}/{layout.POSTER}", poster))
    made = 0
    while made < sprites.sheets and (enc / f"thumbs_{made + 1:03d}.jpg").exists():
        bundle.files.append((f"{vdir}/{sheet_name(made)}", enc / f"thumbs_{made + 1:03d}.jpg"))
        made += 1
    if made:
        shown = min(sprites.count, made * sprites.per_sheet)
        track = type(sprites)(shown, sprites.interval, sprites.width, sprites.height,
                              sprites.columns, sprites.rows)
        bundle.playlists[f"{vdir}/{layout.THUMBS_VTT}"] = vtt(track, videos[0].duration)
        extra["thumbnails"] = record.media_url(asset_id, f"{vdir}/{layout.THUMBS_VTT}")
    extra["poster"] = record.media_url(asset_id, f"{vdir}/{layout.POSTER}")

    presentation = Presentation(
        asset_id=asset_id, kind="video", segment_duration=cfg.segment_duration,
        renditions=tuple(renditions),
        extras={k: extra[k] for k in ("poster", "thumbnails") if k in extra})
    bundle.add_manifests(presentation)  # the same rendering as audio assets
    finish(1.0)
    return presentation, version, bundle, download_rel, extra


async def _encode_audio(info: ProbeResult, cfg: PackagerConfig, work: Path,
                        extra: dict[str, Any]) -> tuple[list[timeline.Chunk], list[list[Path]], float]:
    """The audio rendition through the audio path: loudness (when on) and a priming-free
    AAC encode; muxed later on the video's cut times."""
    assert info.audio is not None
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    duration = info.duration
    filters: list[str] = []
    if cfg.loudness:
        m = await loudness.measure(info.path, info.audio.index, info.duration)
        duration = m.decoded_duration or duration
        gain = loudness.plan(m, cfg.loudness_target, cfg.true_peak)
        filters = gain.filters()
        extra["loudness"] = {"input_integrated": m.integrated if m.integrated > -1e9 else None,
                             "input_true_peak": m.true_peak if m.true_peak > -1e9 else None,
                             "gain_db": round(gain.gain_db, 2), "limited": gain.limit_db is not None,
                             "target": cfg.loudness_target, "true_peak_ceiling": cfg.true_peak}
    # One worker: the video encode already keeps every core busy.
    chunks, files = await audio.encode(info.path, info.audio.index, duration, [_audio_rung(cfg)],
                                       filters, cfg.aac_coder, 1, work, lambda f: None,
                                       validate=not cfg.loudness)
    return chunks, files, duration


def _beyond(video_end: Fraction, audio_end: Fraction, seg: Fraction) -> list[Fraction]:
    """Cuts for audio that runs on past the video: from the video's end, every segment."""
    out: list[Fraction] = []
    t = video_end
    while audio_end - t > seg * timeline.MIN_TAIL_SHARE:
        out.append(t)
        t += seg
    return out


def _check_aligned(videos: list[Rendition]) -> None:
    """Every rung must have the same segments (start and duration) as the first."""
    ref = [(s.start * 1_000_000 // videos[0].timescale, s.duration * 1_000_000 // videos[0].timescale)
           for s in videos[0].segments]
    for r in videos[1:]:
        mine = [(s.start * 1_000_000 // r.timescale, s.duration * 1_000_000 // r.timescale)
                for s in r.segments]
        if mine != ref:
            raise PackagerError(f"rendition {r.id} is not aligned with {videos[0].id}")
    for r in videos:
        for s in r.segments:
            if not s.starts_with_sync:
                raise PackagerError(f"rendition {r.id}: segment {s.number} does not start "
                                    "with a keyframe")


def _check_complete(info: ProbeResult, decoded: float) -> None:
    """Refuse a video that decodes to much less than its container announces."""
    v = info.video
    assert v is not None
    expected, share = (v.duration, 0.9) if v.duration else (info.duration, 0.75)
    if expected > 1.0 and decoded < share * expected - 0.5:
        raise InvalidInput(f"{info.path.name}: truncated: the video decodes to {decoded:.1f} s "
                           f"of the {expected:.1f} s its header announces")


def _raise_ffmpeg(name: str, stderr: str, code: int) -> None:
    lines = [ln.split("]", 1)[-1].strip() for ln in stderr.strip().splitlines() if ln.strip()]
    detail = lines[-1] if lines else f"ffmpeg exited with {code}"
    if any(e in stderr for e in _ENVIRONMENT_ERRORS):
        raise PackagerError(f"ffmpeg failed encoding video: {detail[-300:]}")
    raise InvalidInput(f"{name}: corrupt or undecodable video ({detail[-200:]})")


def _concatenate(rdir: Path, r: Rendition, out: Path) -> None:
    with open(out, "wb") as dst:
        for name in [layout.INIT] + [layout.segment_name(s.number) for s in r.segments]:
            with open(rdir / name, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)


async def _fallback_poster(src: Path, top: VideoOutput, size: tuple[int, int],
                           out: Path) -> None:
    """The first frame of the top rung, when the encode's poster branch had no frame."""
    code, stderr = await process.run([
        process.FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+error",
        "-y", "-i", str(src), "-frames:v", "1", "-vf", f"scale={size[0]}:{size[1]}",
        "-q:v", "3", "-f", "image2", "-update", "1", str(out)])
    if code != 0 or not await asyncio.to_thread(out.exists):
        raise PackagerError(f"could not make the poster of {top.id}: {stderr.strip()[-200:]}")
