"""Reading the packaged fragments back into the presentation model.

Everything a manifest states (durations, sizes, codecs, sync samples) comes from here,
measured on the bytes that will be served, never from the settings that produced them.
"""

from __future__ import annotations

from pathlib import Path

from manifests import boxes, layout
from manifests.model import Rendition, Segment
from packager.errors import PackagerError

MDAT_HEADER = 8  # sori's and ffmpeg's mdat boxes use 32-bit sizes


def read_rendition(rid: str, local_dir: Path, rel_dir: str, *, frame_rate: float = 0.0,
                   language: str = "und") -> Rendition:
    """Measure `local_dir`'s init.mp4 and seg_00001.m4s... into a Rendition whose URIs are
    `rel_dir` (relative to the asset root)."""
    init = (local_dir / layout.INIT).read_bytes()
    try:
        track = boxes.parse_init(init)
    except (boxes.BoxError, IndexError, ValueError) as e:
        raise PackagerError(f"rendition {rid}: unreadable init segment ({e})") from None
    segments: list[Segment] = []
    number = 1
    expected_start: int | None = None
    while (path := local_dir / layout.segment_name(number)).exists():
        data = path.read_bytes()
        try:
            frags = boxes.parse_fragments(data, track.defaults)
        except (boxes.BoxError, IndexError, ValueError) as e:
            raise PackagerError(f"rendition {rid}: unreadable segment {number} ({e})") from None
        if not frags:
            raise PackagerError(f"rendition {rid}: segment {number} has no fragment")
        first = frags[0]
        if expected_start is not None and first.base_decode_time != expected_start:
            raise PackagerError(f"rendition {rid}: tfdt jumps at segment {number} "
                                f"({first.base_decode_time} != {expected_start})")
        duration = sum(f.duration for f in frags)
        segments.append(Segment(
            number=number, start=first.base_decode_time, duration=duration, size=len(data),
            iframe_offset=first.offset,
            iframe_length=(first.mdat_offset + MDAT_HEADER + first.first_sample_size
                           - first.offset) if first.first_is_sync else 0,
            starts_with_sync=first.first_is_sync,
        ))
        expected_start = first.base_decode_time + duration
        number += 1
    if not segments:
        raise PackagerError(f"rendition {rid}: no segments were produced")
    kind = "video" if track.handler == "vide" else "audio"
    return Rendition(
        id=rid, content_type=kind, codecs=track.codecs, timescale=track.timescale,
        segments=tuple(segments), dir=rel_dir, init_size=len(init),
        sample_rate=track.sample_rate, channels=track.channels,
        width=track.width, height=track.height, frame_rate=frame_rate, language=language,
    )
