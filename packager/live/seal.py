"""Sealing a live asset into an ordinary VOD asset at the same URLs.

The segments are already in the store (they were published as they were cut). Sealing
reads them back like any packaged rendition (packager.readback: the model is measured
from the bytes), then publishes what a packaged asset has and a live one lacked, in the
usual order with the record last (the commit point): the progressive download, the VOD
media playlists (EXT-X-ENDLIST, the live target duration, the program date-time kept),
the static MPD and the multivariant playlist with measured bandwidths, then the record
with `state: "ready"` and the real duration.

A stream with a transcript (issue 14) seals with what a packaged asset with one has
(`seal_text`): the WebVTT segments not written while live (those written stay as they
are: immutable URLs; a cue whose end changed after one was written, a silence fill in the
middle of its audio, keeps its first end there), transcript.vtt/.txt with the final times,
chapters, and the VOD subtitles playlist; the manifests then declare the text track.

`recover` does the same for a stream whose origin stopped: it fetches the stored
segments (and the parts of the segment that was in progress, joined into one) first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import struct
import tempfile
from pathlib import Path
from typing import Any

from manifests import boxes, dash, hls, layout, subtitles
from manifests.llhls import sealed_media_playlist
from manifests.model import Presentation, Rendition, TextTrack
from packager import process, publish, readback, record
from packager.audio import aac_cmaf, ffmpeg_args
from packager.errors import PackagerError
from packager.live.captions import LiveCaptions
from packager.live.publish import subs_dir
from packager.transcript import chapters, segment
from storage.base import Store
from storage.content_types import content_type_for

_PART = re.compile(r"seg_(\d{5})\.(\d+)\.m4s")
_SEGMENT = re.compile(r"seg_(\d{5})\.m4s")
# A silent AAC-LC raw frame (no ADTS header) by channel count, at any sample rate: the
# frames hls.js pads gaps with.
_SILENT_FRAME = {1: bytes([0x00, 0xC8, 0x00, 0x80, 0x23, 0x80]),
                 2: bytes([0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80])}


async def seal(store: Store, rec: dict[str, Any], spool: Path, *, reason: str,
               silence_seconds: float, download_rendition: str,
               padding_seconds: float = 0.0, captions: LiveCaptions | None = None,
               subs_written: int = 0) -> dict[str, Any]:
    """Publish the VOD form of the live asset whose init and segments are in `spool/<rung>/`;
    returns the new record. With `captions` (a stream with a transcript), its text too
    (`seal_text`), `subs_written` WebVTT segments of it being in the store."""
    asset_id = rec["id"]
    version = rec["version"]
    live = rec.get("live", {})
    target = int(live["target_duration"])
    start = float(live["start"])
    renditions = []
    for item in rec["renditions"]:
        rid = item["id"]
        renditions.append(await asyncio.to_thread(
            readback.read_rendition, rid, spool / rid, layout.rendition_dir(version, rid)))
    p = Presentation(asset_id=asset_id, kind="audio",
                     segment_duration=float(live["segment_duration"]),
                     renditions=tuple(renditions), title=rec.get("title", ""))
    if hls.presentation_target(p) > target:
        raise PackagerError(f"a live segment is longer than the target duration {target}")
    text_urls: dict[str, Any] = {}
    if captions is not None:
        p, text_urls = await seal_text(store, p, version, captions, subs_written, target)
    dl = next((r for r in renditions if r.id == download_rendition), renditions[-1])
    download_rel = f"{layout.version_dir(version)}/{layout.download_name('audio')}"
    with tempfile.TemporaryDirectory(prefix="sori-seal-") as tmp:
        out = Path(tmp) / "download.m4a"
        parts = [spool / dl.id / layout.INIT] + [spool / dl.id / layout.segment_name(s.number)
                                                 for s in dl.segments]
        code, stderr = await process.run(ffmpeg_args.faststart_remux_args(parts, out))
        if code != 0:
            raise PackagerError(f"ffmpeg failed writing the download: {stderr.strip()[-300:]}")
        await store.put_file(layout.key(asset_id, download_rel), out,
                             content_type_for(download_rel))
    for r in renditions:
        await store.put_bytes(layout.key(asset_id, r.playlist_uri),
                              sealed_media_playlist(r, target, start).encode(),
                              content_type_for(r.playlist_uri))
    for rel, text in ((layout.MPD, dash.mpd(p)), (layout.MASTER, hls.multivariant_playlist(p))):
        await store.put_bytes(layout.key(asset_id, rel), text.encode(), content_type_for(rel))
    size = 0
    for r in renditions:
        size += r.init_size + sum(s.size for s in r.segments)
    live_info = dict(live)
    live_info.update(sealed=record.now_rfc3339(), reason=reason,
                     silence_seconds=round(silence_seconds, 3),
                     end_padding_seconds=round(padding_seconds, 3))

    def change(stored: dict[str, Any] | None) -> dict[str, Any]:
        current = record.patched_from(stored, dict(rec))
        extra: dict[str, Any] = {k: v for k, v in current.items() if k in ("access",)}
        extra["live"] = live_info
        extra.update(text_urls)
        extra["silence_inserted"] = round(silence_seconds, 3)
        return record.build(p, version=version, title=current.get("title", asset_id),
                            created=rec["created"], download_rel=download_rel, size=size,
                            source=rec.get("source", {"name": "live"}), extra=extra)

    new = await publish.update_record(store, asset_id, change)
    assert new is not None
    return new


async def fetch_spool(store: Store, rec: dict[str, Any], spool: Path) -> float:
    """Bring a stopped live asset's stored segments into `spool/<rung>/`, the parts of a
    segment in progress joined into one (as many parts as every rung has). Returns the
    media seconds recovered."""
    asset_id, version = rec["id"], rec["version"]
    found: dict[str, tuple[set[int], dict[int, set[int]]]] = {}
    for item in rec["renditions"]:
        rid = item["id"]
        base = layout.key(asset_id, layout.rendition_dir(version, rid)) + "/"
        segs: set[int] = set()
        parts: dict[int, set[int]] = {}
        for key in await store.list(base):
            name = key[len(base):]
            if m := _SEGMENT.fullmatch(name):
                segs.add(int(m.group(1)))
            elif m := _PART.fullmatch(name):
                parts.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        found[rid] = (segs, parts)
    complete = min((max(s, default=0) for s, _p in found.values()), default=0)
    # The next segment's parts that every rung has, from 0 without a gap.
    common = None
    for _segs, parts in found.values():
        have = parts.get(complete + 1, set())
        n = 0
        while n in have:
            n += 1
        common = n if common is None else min(common, n)
    seconds = 0.0
    for item in rec["renditions"]:
        rid = item["id"]
        rel_dir = layout.rendition_dir(version, rid)
        d = spool / rid
        d.mkdir(parents=True, exist_ok=True)
        (d / layout.INIT).write_bytes(await store.get(layout.key(asset_id,
                                                                 f"{rel_dir}/{layout.INIT}")))
        for n in range(1, complete + 1):
            data = await store.get(layout.key(asset_id, f"{rel_dir}/{layout.segment_name(n)}"))
            (d / layout.segment_name(n)).write_bytes(data)
        if common:
            joined = b"".join([await store.get(layout.key(
                asset_id, f"{rel_dir}/{layout.part_name(complete + 1, k)}"))
                for k in range(common)])
            joined = _pad_tail((d / layout.INIT).read_bytes(), joined,
                               0.25 * float(rec["live"]["target_duration"]))
            (d / layout.segment_name(complete + 1)).write_bytes(joined)
            await store.put_bytes(layout.key(asset_id, f"{rel_dir}/"
                                             f"{layout.segment_name(complete + 1)}"),
                                  joined, content_type_for(layout.segment_name(complete + 1)))
    if complete == 0 and not common:
        raise PackagerError("no audio was published before the origin stopped")
    return seconds


def _pad_tail(init: bytes, joined: bytes, min_seconds: float) -> bytes:
    """The last segment a recovery joined from the parts it found, lengthened with silent
    AAC frames to `min_seconds` (a quarter of the target, as the end of a stream pads it):
    a sealed asset has no near-empty trailing segment (CONTRACT section 5). The parts'
    bytes are kept as they were published; one chunk (moof + mdat) of silence follows."""
    track = boxes.parse_init(init)
    frags = boxes.parse_fragments(joined, track.defaults)
    have = sum(f.duration for f in frags)
    frames = math.ceil((min_seconds * track.timescale - have) / aac_cmaf.SAMPLES_PER_FRAME)
    silent = _SILENT_FRAME.get(track.channels)
    if frames <= 0 or not frags or silent is None:
        return joined
    last = frags[-1]
    sequence = struct.unpack_from(">I", joined, last.offset + 20)[0] + 1  # moof/mfhd
    return joined + aac_cmaf.media_segment(sequence, last.base_decode_time + last.duration,
                                           [silent] * frames, styp=False)


async def seal_text(store: Store, p: Presentation, version: str, captions: LiveCaptions,
                    written: int, target: int) -> tuple[Presentation, dict[str, Any]]:
    """Write what the sealed asset needs of the transcript; returns the presentation with
    its text track (and chapters) and the record's URL fields. No cue: nothing changes."""
    t = captions.transcript(final=True)
    if not t.cues:
        return p, {}
    r: Rendition = next(x for x in p.audio if x.id != layout.DATA_SAVER_RENDITION)
    first = r.segments[0].start
    duration_ms = math.floor(r.duration * 1000)
    wins = segment.windows(((s.number, s.start, s.duration) for s in r.segments), r.timescale,
                           first)
    sdir = subs_dir(version)
    vdir = layout.version_dir(version)
    objects: list[tuple[str, bytes]] = []
    for number, text in segment.segments(t, wins, segment.mpegts(first, r.timescale)):
        if number > written:  # the ones written while live stay as they are (immutable)
            objects.append((f"{sdir}/{layout.subtitle_segment_name(number)}", text.encode()))
    whole = segment.whole_vtt(t).encode()
    objects += [(f"{vdir}/{layout.TRANSCRIPT_VTT}", whole),
                (f"{vdir}/{layout.TRANSCRIPT_TXT}", segment.plain_text(t).encode())]
    found = chapters.collect(t)
    if found:
        objects += [
            (f"{vdir}/{layout.CHAPTERS_JSON}",
             chapters.apple_json(found, duration_ms, t.language).encode()),
            (f"{vdir}/{layout.CHAPTERS_VTT}", chapters.chapters_vtt(found, duration_ms).encode())]
    track = TextTrack(dir=sdir, segment_durations=tuple(w.end - w.start for w in wins),
                      whole_uri=f"{vdir}/{layout.TRANSCRIPT_VTT}",
                      bandwidth=max(1, math.ceil(8 * len(whole) / max(r.duration, 1e-3))),
                      language=t.language, first_number=r.segments[0].number)
    p = dataclasses.replace(p, text=track,
                            chapters_uri=f"{vdir}/{layout.CHAPTERS_JSON}" if found else "")
    objects.append((track.playlist_uri, subtitles.media_playlist(track, target).encode()))
    for rel, data in objects:
        await store.put_bytes(layout.key(p.asset_id, rel), data, content_type_for(rel))
    urls: dict[str, Any] = {
        "transcript": record.media_url(p.asset_id, f"{vdir}/{layout.TRANSCRIPT_VTT}"),
        "transcript_text": record.media_url(p.asset_id, f"{vdir}/{layout.TRANSCRIPT_TXT}")}
    if found:
        urls["chapters"] = record.media_url(p.asset_id, f"{vdir}/{layout.CHAPTERS_JSON}")
    return p, urls
