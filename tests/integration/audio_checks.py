"""Checks on a packaged asset read back from a store: what every audio test asserts."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import m3u8
from lxml import etree

from manifests import boxes, layout
from storage.base import Store

SCHEMA_PATH = Path(os.environ.get("SORI_TEST_DASH_SCHEMA", Path(__file__).resolve().parents[1]
                                   / "schemas" / "dash" / "DASH-MPD.xsd"))
_schema: etree.XMLSchema | None = None


def dash_schema() -> etree.XMLSchema:
    global _schema
    if _schema is None:
        _schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    return _schema


async def check_packaged_audio(store: Store, asset_id: str, segment_duration: float
                               ) -> dict[str, Any]:
    """Assert the published asset is complete and self-consistent; return a summary."""
    record = json.loads(await store.get(f"{asset_id}/asset.json"))
    assert record["id"] == asset_id and record["state"] == "ready" and record["kind"] == "audio"
    master_text = (await store.get(f"{asset_id}/master.m3u8")).decode()
    master = m3u8.loads(master_text)
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in master_text
    assert master.is_variant and len(master.playlists) == len(record["renditions"])
    by_id = {r["id"]: r for r in record["renditions"]}
    starts: dict[str, list[float]] = {}
    durations: dict[str, float] = {}
    targets: dict[str, int] = {}
    longest = 0.0
    for variant in master.playlists:
        info = variant.stream_info
        rid = variant.uri.split("/")[-2]
        assert variant.uri.startswith("v/") and layout.is_immutable(variant.uri)
        media_text = (await store.get(f"{asset_id}/{variant.uri}")).decode()
        media = m3u8.loads(media_text)
        assert media.playlist_type == "vod" and media.is_endlist
        assert "#EXT-X-INDEPENDENT-SEGMENTS" in media_text
        assert media_text.count("#EXT-X-TARGETDURATION:") == 1
        targets[rid] = media.target_duration
        base = variant.uri.rsplit("/", 1)[0]
        init = await store.get(f"{asset_id}/{base}/{media.segment_map[0].uri}")
        track = boxes.parse_init(init)
        if rid == layout.DATA_SAVER_RENDITION:  # Opus, mono (issue 14)
            assert info.codecs == track.codecs == by_id[rid]["codecs"] == "opus"
            assert track.channels == 1 and track.sample_rate == 48000
        else:
            assert info.codecs == track.codecs == by_id[rid]["codecs"] == "mp4a.40.2"
            assert track.channels == 2
        assert info.bandwidth == by_id[rid]["bandwidth"] >= info.average_bandwidth > 0
        expected_t = 0
        seg_starts = []
        total_bytes = 0
        for seg in media.segments:
            data = await store.get(f"{asset_id}/{base}/{seg.uri}")
            total_bytes += len(data)
            frags = boxes.parse_fragments(data, track.defaults)
            assert frags, f"{seg.uri} holds no fragment"
            assert frags[0].base_decode_time == expected_t, "tfdt is not continuous"
            ticks = sum(f.duration for f in frags)
            assert abs(seg.duration - ticks / track.timescale) < 1e-6, "EXTINF != fragment time"
            assert seg.duration <= media.target_duration
            longest = max(longest, seg.duration)
            seg_starts.append(expected_t / track.timescale)
            expected_t += ticks
        total = expected_t / track.timescale
        # measured AVERAGE-BANDWIDTH: all segment bytes over the duration
        assert abs(info.average_bandwidth - 8 * total_bytes / total) <= 1
        if len(media.segments) > 1:
            assert media.segments[-1].duration >= segment_duration / 8, "sliver of a last segment"
        starts[rid] = seg_starts
        durations[rid] = total
    # RFC 8216 §6.2.4: every media playlist of the asset has the same target duration, the
    # ceiling of the longest segment of any rendition (1 µs tolerance, as manifests.hls)
    target = max(1, math.ceil(longest - 1e-6))
    assert set(targets.values()) == {target}, f"target durations {targets}, longest {longest}"
    # renditions line up: same number of segments, boundaries within one AAC frame (the
    # Opus data-saver rung's 20 ms packets are shorter than any AAC frame here)
    frame = max(1024 / r["sample_rate"] for r in record["renditions"] if r["codecs"] != "opus")
    counts = {rid: len(s) for rid, s in starts.items()}
    assert len(set(counts.values())) == 1, counts
    for i in range(next(iter(counts.values()))):
        at = [s[i] for s in starts.values()]
        assert max(at) - min(at) <= frame + 1e-9
    assert max(durations.values()) - min(durations.values()) <= frame + 1e-9
    mpd = etree.fromstring(await store.get(f"{asset_id}/manifest.mpd"))
    assert dash_schema().validate(mpd), dash_schema().error_log
    return {"record": record, "durations": durations, "segments": counts, "target": target,
            "longest": longest}


def moov_before_mdat(data: bytes) -> bool:
    order = [b.type for b in boxes.iter_boxes(data)]
    return b"moov" in order and b"mdat" in order and order.index(b"moov") < order.index(b"mdat")
