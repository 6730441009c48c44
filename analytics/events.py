"""What the origin, a log import or a CMCD collector hands to the recorder: plain values.

The raw client address is in these objects only while they wait in memory; the writer
turns it into a country and a salted hash before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AssetInfo:
    """What counting needs to know of an asset, from its record (`asset.json`)."""

    id: str
    kind: str  # "audio" | "video"
    duration: float  # seconds (0 while live)
    segment_duration: float  # seconds of a media segment
    download_bytes: int  # size of the progressive file (0 when unknown)
    renditions: dict[str, int] = field(default_factory=dict)  # id -> bandwidth (bits/s)
    part_duration: float = 0.0  # LL-HLS part, live assets
    live: bool = False

    @classmethod
    def from_record(cls, record: dict[str, Any], *, download_bytes: int = 0) -> AssetInfo:
        """From an asset record. The record's `size` is the whole bundle (every rendition,
        the download, images), not the progressive file: the origin passes the download's
        size when it knows it (it serves it); 0 lets counting estimate it from a bitrate."""
        live = record.get("live")
        live_info = live if isinstance(live, dict) else {}
        renditions: dict[str, int] = {}
        for item in record.get("renditions") or ():
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                renditions[item["id"]] = _int(item.get("bandwidth"))
        explicit = _int(record.get("download_bytes"))
        return cls(
            id=str(record.get("id", "")),
            kind="video" if record.get("kind") == "video" else "audio",
            duration=max(0.0, _float(record.get("duration"))),
            segment_duration=max(0.0, _float(record.get("segment_duration"))),
            download_bytes=max(0, download_bytes or explicit),
            renditions=renditions,
            part_duration=max(0.0, _float(live_info.get("part_duration"))),
            live=record.get("state") == "live",
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """One response the origin (or an edge, from its log) sent."""

    ts: float  # UNIX seconds, when the response ended
    asset: str  # asset id
    rel: str  # path below /assets/{id}/ ("v/…/low/seg_00003.m4s", "master.m3u8"), or
    #           "download" for /v1/assets/{id}/download
    method: str
    status: int
    nbytes: int  # body bytes sent
    range: str | None  # the Range request header as sent
    ip: str  # the client's address (through trusted proxies); never stored
    ua: str
    cmcd: str | None = None  # CMCD v1 data: the CMCD= query value, or the CMCD-* headers
    #                          joined with ","
    source: str = "origin"  # "origin" | "import"
    info: AssetInfo | None = None  # the asset, when the sender knows it


@dataclass(frozen=True, slots=True)
class Report:
    """One CMCD v2 event report (one line of a POSTed body), or a v1 report sent alone."""

    ts: float  # UNIX seconds when received
    ip: str
    ua: str
    data: str  # the CMCD key=value list as sent
    asset: str | None = None  # the asset, when the collector knows it (else the report's cid)


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if out == out and out not in (float("inf"), float("-inf")) else 0.0


def _int(value: Any) -> int:
    return int(_float(value))
