"""Packaging one source file into a published asset: probe → measure → encode → mux →
read back → render manifests → publish."""

from __future__ import annotations

import asyncio
import re
import secrets
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifests import layout
from manifests.model import Presentation, Rendition
from packager import probe, process, publish, readback, record, timeline
from packager.audio import ffmpeg_args, loudness, saver
from packager.audio import renditions as audio
from packager.errors import InvalidInput, PackagerError
from packager.transcript import attach as transcript_files
from packager.video import build as video
from storage.base import Store

if TYPE_CHECKING:
    from packager.transcript.cues import Transcript
    from settings import PackagerConfig

Progress = Callable[[float, str], None]

# Share of the progress bar each phase takes.
_MEASURE, _ENCODE, _MUX, _PUBLISH = 0.10, 0.75, 0.05, 0.10


def default_asset_id(source: Path) -> str:
    """An id from the file name: its stem reduced to the allowed characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-._")[:100]
    return stem if stem and layout.is_valid_asset_id(stem) else f"asset-{secrets.token_hex(4)}"


def check_asset_id(asset_id: str) -> str:
    if not layout.is_valid_asset_id(asset_id):
        raise InvalidInput(f"invalid asset id {asset_id!r}: use 1-128 letters, digits, '.', "
                           "'_' or '-', starting with a letter or digit")
    return asset_id


class _Phases:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.base = 0.0
        self.last = -1.0

    def phase(self, name: str, share: float) -> Callable[[float], None]:
        start = self.base
        self.base += share

        def report(fraction: float) -> None:
            value = min(1.0, start + share * max(0.0, min(1.0, fraction)))
            if self.progress and value - self.last >= 0.001:
                self.last = value
                self.progress(value, name)
        report(0.0)
        return report


async def package(source: Path, store: Store, cfg: PackagerConfig, *,
                  asset_id: str | None = None, title: str | None = None, kind: str = "auto",
                  access: str | None = None,
                  progress: Progress | None = None, work_root: Path | None = None,
                  transcript: Transcript | None = None,
                  ) -> dict[str, Any]:
    """Package `source` into `store`; return the asset record. Raises InvalidInput for bad
    input (nothing is published), PackagerError for other failures (cleaned up).

    `access`: "public" or "private"; None keeps what an asset re-packaged under the same
    id had (a private asset never turns public by being packaged again), else public.

    `transcript` (parsed by packager.transcript.parse): published as a subtitles rendition
    aligned to the media segments, the whole .vtt and .txt and its chapters; a cue past the
    packaged audio's end raises InvalidInput before anything is published."""
    process.require_tools()
    asset_id = check_asset_id(asset_id if asset_id is not None else default_asset_id(source))
    if kind not in ("auto", "audio", "video"):
        raise InvalidInput(f"unknown kind {kind!r}: use auto, audio or video")
    if access not in (None, "public", "private"):
        raise InvalidInput(f"unknown access {access!r}: use public or private")
    info = await probe.probe(source, max_duration=cfg.max_duration, kind=kind)
    existing = await publish.read_record(store, asset_id)
    inherit = ("access",) if access is None else ()
    if access is None:
        access = "private" if existing and existing.get("access", "public") != "public" \
            else "public"
    created = existing.get("created", record.now_rfc3339()) if existing else record.now_rfc3339()
    phases = _Phases(progress)
    with tempfile.TemporaryDirectory(prefix="sori-", dir=work_root) as tmp:
        work = Path(tmp)
        if info.kind == "video":
            built = await video.build(info, cfg, work, asset_id, phases.phase)
        else:
            built = await _build_audio(info, cfg, work, asset_id, phases)
        presentation, version, bundle, download_rel, extra = built
        if transcript is not None:
            presentation, urls = await asyncio.to_thread(
                transcript_files.attach, transcript, presentation, version, work, bundle)
            extra.update(urls)
        # what the decoder found beats the container's estimate (raw ADTS, some MP3s)
        source_duration = extra.pop("decoded_duration", None) or info.duration
        size = sum(p.stat().st_size for _rel, p in bundle.files)
        rec = record.build(presentation, version=version, title=title or source.stem,
                           created=created, download_rel=download_rel, size=size,
                           source={"name": source.name, "format": info.format_name,
                                   "duration": round(source_duration, 3), "size": info.size},
                           extra={**extra, "access": access})
        rec = await publish.publish(store, asset_id, version, bundle, rec,
                                    keep_versions=cfg.keep_versions,
                                    on_progress=phases.phase("publish", _PUBLISH),
                                    inherit=inherit)
    if progress:
        progress(1.0, "done")
    return rec


async def _build_audio(info: probe.ProbeResult, cfg: PackagerConfig, work: Path,
                       asset_id: str, phases: _Phases,
                       ) -> tuple[Presentation, str, publish.Bundle, str, dict[str, Any]]:
    assert info.audio is not None
    rungs = list(cfg.audio_ladder)
    if cfg.data_saver and any(r.id == layout.DATA_SAVER_RENDITION for r in rungs):
        raise PackagerError(f"packager.audio_ladder: the rung id {layout.DATA_SAVER_RENDITION!r} "
                            "is the data-saver rung's (packager.data_saver)")
    extra: dict[str, Any] = {}
    filters: list[str] = []
    duration = info.duration
    if cfg.loudness:
        m = await loudness.measure(info.path, info.audio.index, info.duration,
                                   on_time=_seconds_to_fraction(
                                       phases.phase("measure", _MEASURE), info.duration))
        duration = m.decoded_duration or duration
        extra["decoded_duration"] = duration
        gain = await loudness.calibrate(
            info.path, info.audio.index, loudness.plan(m, cfg.loudness_target, cfg.true_peak),
            cfg.loudness_target)
        filters = gain.filters()
        extra["loudness"] = {"input_integrated": m.integrated if m.integrated > -1e9 else None,
                             "input_true_peak": m.true_peak if m.true_peak > -1e9 else None,
                             "gain_db": round(gain.gain_db, 2), "limited": gain.limit_db is not None,
                             "target": cfg.loudness_target, "true_peak_ceiling": cfg.true_peak}
    else:
        phases.phase("measure", _MEASURE)(1.0)
    aac = audio.encode(
        info.path, info.audio.index, duration, rungs, filters, cfg.aac_coder,
        audio.worker_count(cfg.workers), work, phases.phase("encode", _ENCODE),
        validate=not cfg.loudness)
    saver_ogg = work / "saver.ogg"
    if cfg.data_saver:
        (chunks, files), saver_error = await process.run_all(
            aac, _encode_saver(info, filters, cfg.data_saver_bitrate, saver_ogg))
        if saver_error is not None:
            raise saver_error
    else:
        chunks, files = await aac
    version = publish.new_version()
    boundaries = _boundaries(duration, cfg.segment_duration)
    mux_report = phases.phase("mux", _MUX)
    bundle = publish.Bundle()
    renditions = []
    for i, rung in enumerate(rungs):
        rel_dir = layout.rendition_dir(version, rung.id)
        out = work / "out" / rung.id
        per_rung = [chunk_files[i] for chunk_files in files]
        await asyncio.to_thread(audio.mux, chunks, per_rung, rung, boundaries, out)
        renditions.append(await asyncio.to_thread(readback.read_rendition, rung.id, out, rel_dir))
        bundle.files += [(f"{rel_dir}/{p.name}", p) for p in sorted(out.iterdir())]
        mux_report((i + 1) / (len(rungs) + 2))
    if cfg.data_saver:
        renditions.append(await _mux_saver(saver_ogg, boundaries, version, work, bundle))
    presentation = Presentation(asset_id=asset_id, kind="audio",
                                segment_duration=cfg.segment_duration,
                                renditions=tuple(renditions))
    # The progressive download: the chosen rung's segments as one MP4, index in front.
    dl_rung = next(r for r in renditions if r.id == cfg.download_rendition)
    dl_dir = work / "out" / dl_rung.id
    download_rel = f"{layout.version_dir(version)}/{layout.download_name('audio')}"
    download = work / "download.m4a"
    parts = [dl_dir / layout.INIT] + [dl_dir / layout.segment_name(s.number)
                                      for s in dl_rung.segments]
    code, stderr = await process.run(ffmpeg_args.faststart_remux_args(parts, download))
    if code != 0:
        raise PackagerError(f"ffmpeg failed writing the download: {stderr.strip()[-300:]}")
    bundle.files.append((download_rel, download))
    mux_report(1.0)
    bundle.add_manifests(presentation)
    return presentation, version, bundle, download_rel, extra


async def _encode_saver(info: probe.ProbeResult, filters: list[str], bitrate: int,
                        out: Path) -> PackagerError | None:
    """Encode the data-saver rung; its failure is returned, not raised, so that the AAC
    encode (which checks that the input decodes) decides how a bad input is reported."""
    assert info.audio is not None
    try:
        await saver.encode(info.path, info.audio.index, filters, bitrate, out)
    except PackagerError as e:
        return e
    return None


async def _mux_saver(ogg: Path, boundaries: list[Fraction], version: str, work: Path,
                     bundle: publish.Bundle) -> Rendition:
    """Cut the Opus data-saver rung on the AAC rungs' grid and add it to the bundle."""
    rel_dir = layout.rendition_dir(version, layout.DATA_SAVER_RENDITION)
    out = work / "out" / layout.DATA_SAVER_RENDITION
    await asyncio.to_thread(saver.mux, ogg, boundaries, out)
    rendition = await asyncio.to_thread(readback.read_rendition, layout.DATA_SAVER_RENDITION,
                                        out, rel_dir)
    bundle.files += [(f"{rel_dir}/{p.name}", p) for p in sorted(out.iterdir())]
    return rendition


def _boundaries(duration: float, segment_duration: float) -> list[Fraction]:
    return timeline.segment_boundaries(Fraction(duration).limit_denominator(1_000_000),
                                       Fraction(segment_duration).limit_denominator(1000))


def _seconds_to_fraction(report: Callable[[float], None], total: float) -> Callable[[float], None]:
    return lambda t: report(t / total if total > 0 else 0.0)
