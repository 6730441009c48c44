"""Support for the origin tests (no tests here): a small fake packaged asset written straight
into a store, a call-counting Store wrapper, and a raw HTTP request helper.
Real packaged assets are tested with the packager; here the bytes only need the
right keys and sizes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from storage.base import CHUNK_SIZE, ObjectInfo, Store

ASSET = "talk-1"
VERSION = "abc123"
SEGMENT = f"v/{VERSION}/low/seg_00001.m4s"
INIT = f"v/{VERSION}/low/init.mp4"
MEDIA_PLAYLIST = f"v/{VERSION}/low/index.m3u8"
SEGMENT_SIZE = 100_000

MASTER_TEXT = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    + "".join(f'#EXT-X-STREAM-INF:BANDWIDTH={64000 * i},CODECS="mp4a.40.2"\n'
              f"v/{VERSION}/r{i}/index.m3u8\n" for i in range(1, 40))
)
MPD_TEXT = ('<?xml version="1.0" encoding="utf-8"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">'
            + "<Period>" + "<AdaptationSet/>" * 200 + "</Period></MPD>\n")


def make_objects() -> dict[str, tuple[bytes, str]]:
    """rel path -> (bytes, content type) of a fake packaged audio asset."""
    playlist = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n" + "".join(
        f"#EXTINF:4.0,\nseg_{n:05d}.m4s\n" for n in range(1, 200)) + "#EXT-X-ENDLIST\n"
    return {
        "master.m3u8": (MASTER_TEXT.encode(), "application/vnd.apple.mpegurl"),
        "manifest.mpd": (MPD_TEXT.encode(), "application/dash+xml"),
        "asset.json": (b'{"id": "talk-1"}', "application/json"),
        INIT: (os.urandom(1200), "audio/mp4"),
        SEGMENT: (os.urandom(SEGMENT_SIZE), "video/iso.segment"),
        MEDIA_PLAYLIST: (playlist.encode(), "application/vnd.apple.mpegurl"),
        f"v/{VERSION}/thumbs.vtt": (b"WEBVTT\n\n00:00.000 --> 00:05.000\nthumbs.jpg#xywh=0,0,160,90\n",
                                    "text/vtt"),
        f"v/{VERSION}/poster.jpg": (b"\xff\xd8\xff\xe0" + os.urandom(3000), "image/jpeg"),
    }


async def publish(store: Store, asset: str = ASSET) -> dict[str, bytes]:
    objects = make_objects()
    for rel, (data, ctype) in objects.items():
        await store.put_bytes(f"{asset}/{rel}", data, ctype)
    return {rel: data for rel, (data, _ct) in objects.items()}


@dataclass
class CountingStore:
    """Wraps a Store and counts the calls the origin makes to it."""

    inner: Store
    calls: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    stats: list[str] = field(default_factory=list)  # keys stat'ed, in order
    gets: list[str] = field(default_factory=list)  # keys read whole, in order

    @property
    def name(self) -> str:
        return self.inner.name

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1

    async def stat(self, key: str) -> ObjectInfo:
        self._count("stat")
        self.stats.append(key)
        await asyncio.sleep(self.delay)
        return await self.inner.stat(key)

    async def get(self, key: str) -> bytes:
        self._count("get")
        self.gets.append(key)
        await asyncio.sleep(self.delay)
        return await self.inner.get(key)

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        self._count("read")
        return self.inner.read(key, start, end, chunk_size)

    def local_path(self, key: str) -> Any:
        return self.inner.local_path(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def raw_request(host: str, port: int, target: str, method: str = "GET",
                      headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send exactly `target` on the request line (no client-side normalisation)."""
    reader, writer = await asyncio.open_connection(host, port)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    hdrs = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body
