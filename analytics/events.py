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
    def from_record(cls, record: dict[str, Any]) -> AssetInfo:
        raise NotImplementedError  # analytics.spans owner fills this in


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
