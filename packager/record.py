"""The asset record (`{id}/asset.json`): the ASSET object of the HTTP API.

URLs in the stored record are root-relative (`/assets/...`, `/v1/...`); the origin
prefixes `[origin] public_url` when it serves the record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from manifests import layout
from manifests.bandwidth import average_bitrate, peak_bitrate
from manifests.model import Presentation

URL_FIELDS = ("hls", "dash", "download", "poster", "thumbnails",
              "transcript", "transcript_text", "chapters")  # the last three: issue 14


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def media_url(asset_id: str, rel: str) -> str:
    return f"/assets/{asset_id}/{rel}"


def build(p: Presentation, *, version: str, title: str, created: str,
          download_rel: str, size: int, source: dict[str, Any],
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    renditions = []
    for r in p.renditions:
        item: dict[str, Any] = {
            "id": r.id, "type": r.content_type,
            "bandwidth": peak_bitrate(r, p.segment_duration),
            "average_bandwidth": average_bitrate(r), "codecs": r.codecs,
        }
        if r.content_type == "video":
            item.update(width=r.width, height=r.height, frame_rate=round(r.frame_rate, 3))
        else:
            item.update(sample_rate=r.sample_rate, channels=r.channels)
        renditions.append(item)
    record: dict[str, Any] = {
        "id": p.asset_id,
        "title": title,
        "kind": p.kind,
        "state": "ready",
        "duration": round(p.duration, 3),
        "created": created,
        "updated": now_rfc3339(),
        "version": version,
        "hls": media_url(p.asset_id, layout.MASTER),
        "dash": media_url(p.asset_id, layout.MPD),
        "download": f"/v1/assets/{p.asset_id}/download",
        "download_key": download_rel,
        "segment_duration": p.segment_duration,
        "renditions": renditions,
        "size": size,
        "source": source,
    }
    if extra:
        record.update(extra)
    return record


def with_public_url(record: dict[str, Any], public_url: str) -> dict[str, Any]:
    """The record as clients see it: URLs absolute under `public_url` when one is set."""
    if not public_url:
        return record
    base = public_url.rstrip("/")
    out = dict(record)
    for name in URL_FIELDS:
        value = out.get(name)
        if isinstance(value, str) and value.startswith("/"):
            out[name] = base + value
    return out


PATCHABLE = ("access", "title")  # what PATCH /v1/assets/{id} changes in a stored record


def patched_from(stored: dict[str, Any] | None, rec: dict[str, Any]) -> dict[str, Any]:
    """`rec` updated in place with the PATCHable fields as `stored` has them: a PATCH
    answered by another worker or replica changed the store, not a process's own copy."""
    for name in PATCHABLE:
        if stored is not None and name in stored:
            rec[name] = stored[name]
    return rec
