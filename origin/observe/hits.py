"""Media responses as analytics hits (issue 13): the origin's side of the recording.

`origin.app._finish` (every response aiohttp answered) and the fast lane (every cached
200 it answered) hand each GET/HEAD under `/assets/` and `/v1/assets/{id}/download`
here. What happens on the request's path is only this: cut the path into asset and
object (a signed URL's token left out: a bearer credential never reaches the database),
pick up the CMCD data the player sent, the client's address (through
`[origin] trusted_proxies`), build an `analytics.events.Hit` and hand it to the
recorder, which never blocks (a full queue drops and counts). Classifying, hashing,
geography and writing happen in the recorder's thread.

Counting needs to know the asset (its duration, segment length, renditions): its
`AssetInfo` is built from the record once per asset and version, read by a background
task the first time the asset is met (the hits of that moment wait for it in a short
list, not the request), again when a segment of another version shows up (re-packaged)
and otherwise every few minutes. A request never waits for a store read.

Errors (4xx, 5xx) and aborted responses are not recorded: they deliver nothing to
count, and a scanner's 404s would only fill the database. HEAD and 304 are recorded
and excluded by the counting rules (analytics.counting), like any excluded request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any, Protocol
from urllib.parse import unquote

from aiohttp import web

from analytics.events import AssetInfo, Hit
from manifests import layout
from origin.access.client_ip import Network, client_address
from origin.http.object_cache import LruDict
from origin.http.request_head import RequestHead
from packager.publish import read_record
from signing.urls import MARK
from storage.base import Store
from storage.errors import StoreError

log = logging.getLogger("sori.analytics")

PREFIX = "/assets/"
DOWNLOAD_PREFIX = "/v1/assets/"
DOWNLOAD_SUFFIX = "/download"
INFO_ENTRIES = 16384  # assets whose AssetInfo is kept
WAITING_MAX = 512  # hits of one asset held while its record is read; then sent without
REFRESH = 300.0  # seconds: a record is read again at most this often (VOD)
LIVE_REFRESH = 10.0  # seconds, while the record says live (its duration grows, it seals)
RETRY = 10.0  # seconds before another read after a failed one or a version not found
READ_TIMEOUT = 10.0
# origin.live.peers.HOP (not imported: origin.live imports origin.app, which imports this):
# a request another worker forwarded here is recorded by that worker, which answered it.
PEER_HOP = "X-Sori-Peer"
_PEER_FIELD = PEER_HOP.lower()
CMCD_HEADERS = ("CMCD-Request", "CMCD-Object", "CMCD-Status", "CMCD-Session")
_CMCD_FIELDS = tuple(name.lower() for name in CMCD_HEADERS)


class Sink(Protocol):
    """Where hits go: analytics.recorder.Recorder (its submit never blocks)."""

    def submit(self, hit: Hit) -> object: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Known:
    version: str | None  # the record's version when read
    info: AssetInfo | None  # None: no record (deleted) or unreadable
    read_at: float  # time.monotonic()
    until: float  # read again after this


def media_object(raw_path: str) -> tuple[str, str] | None:
    """(asset id, object path below the asset) of a media or download path, the token of a
    signed URL left out; None for any other path. `raw_path` is undecoded and was
    answered (so its parts were already checked by origin.media or origin.api)."""
    if raw_path.startswith(PREFIX):
        asset, _, rel = raw_path[len(PREFIX):].partition("/")
        if rel.startswith(MARK):
            rel = rel.partition("/")[2]
        return (asset, rel) if asset and rel else None
    if raw_path.startswith(DOWNLOAD_PREFIX) and raw_path.endswith(DOWNLOAD_SUFFIX):
        asset = raw_path[len(DOWNLOAD_PREFIX):-len(DOWNLOAD_SUFFIX)]
        return (asset, "download") if asset and "/" not in asset else None
    return None


def cmcd_query(query: str) -> str | None:
    """The CMCD value when the query string is only `CMCD=...` (what players append to a
    plain URL), decoded; None otherwise. The fast lane answers such requests."""
    if not query.startswith("CMCD=") or "&" in query:
        return None
    return unquote(query[5:])


def join_cmcd(*parts: str | None) -> str | None:
    """The CMCD data of a request: the query value and the four headers' lists, joined
    with "," (CTA-5004 §3: the same key=value list split across carriers)."""
    found = [p for p in parts if p]
    if not found:
        return None
    return ",".join(found)


class Hits:
    """Turns media responses into hits for the recorder; one per application."""

    def __init__(self, sink: Sink, store: Store, trusted: tuple[Network, ...]) -> None:
        self.sink = sink
        self.store = store
        self.trusted = trusted
        self._known: LruDict[_Known] = LruDict(INFO_ENTRIES)
        self._waiting: dict[str, list[Hit]] = {}
        self._reads: dict[str, asyncio.Task[None]] = {}

    # --- from the two answering paths ------------------------------------------------------

    def response(self, request: web.BaseRequest, status: int, nbytes: int) -> None:
        """A response aiohttp answered (origin.app's `_finish`)."""
        if not 100 <= status < 400:
            return
        method = request.method
        if method != "GET" and method != "HEAD":
            return
        found = media_object(request.rel_url.raw_path)
        if found is None:
            return
        headers = request.headers
        if PEER_HOP in headers:
            return
        cmcd = request.query.get("CMCD") if request.query_string else None
        if "CMCD-Request" in headers or "CMCD-Session" in headers or \
                "CMCD-Object" in headers or "CMCD-Status" in headers:
            cmcd = join_cmcd(cmcd, *(headers.get(n) for n in CMCD_HEADERS))
        ip = client_address(request.remote, headers.get("X-Forwarded-For"), self.trusted)
        self.add(found[0], found[1], method, status, nbytes, headers.get("Range"), ip or "",
                 headers.get("User-Agent") or "", cmcd)

    def lane(self, head: RequestHead, nbytes: int, peer: str | None) -> None:
        """A 200 the fast lane answered (origin.fast_lane): no Range, no conditionals."""
        path, _, query = head.target.partition("?")
        found = media_object(path)
        if found is None:
            return
        fields = head.fields
        if _PEER_FIELD in fields:
            return
        cmcd = cmcd_query(query) if query else None
        if "cmcd-request" in fields or "cmcd-session" in fields or \
                "cmcd-object" in fields or "cmcd-status" in fields:
            cmcd = join_cmcd(cmcd, *(fields.get(n) for n in _CMCD_FIELDS))
        ip = client_address(peer, fields.get("x-forwarded-for"), self.trusted)
        self.add(found[0], found[1], head.method, 200, nbytes, None, ip or "",
                 fields.get("user-agent") or "", cmcd)

    # --- the hit, with what is known of its asset -----------------------------------------

    def add(self, asset: str, rel: str, method: str, status: int, nbytes: int,
            byte_range: str | None, ip: str, ua: str, cmcd: str | None) -> None:
        known = self._known.get(asset)
        if known is not None:
            if rel.startswith("v/") and known.version is not None:
                version = rel[2:].partition("/")[0]
                fresh_version = version == known.version
            else:
                fresh_version = True
            now = time.monotonic()
            if fresh_version or now - known.read_at < RETRY:
                if known.until <= now:
                    self._read(asset)  # in the background; this hit keeps the old info
                self.sink.submit(Hit(time.time(), asset, rel, method, status, nbytes,
                                     byte_range, ip, ua, cmcd, "origin", known.info))
                return
        # Never seen, or a version it did not have: the hit waits for the record.
        hit = Hit(time.time(), asset, rel, method, status, nbytes, byte_range, ip, ua, cmcd)
        waiting = self._waiting.get(asset)
        if waiting is None:
            self._waiting[asset] = [hit]
            self._read(asset)
        elif len(waiting) < WAITING_MAX:
            waiting.append(hit)
        else:
            self.sink.submit(hit)

    def _read(self, asset: str) -> None:
        if asset in self._reads:
            return
        task = asyncio.get_running_loop().create_task(self._look(asset))
        self._reads[asset] = task
        task.add_done_callback(lambda _t: self._reads.pop(asset, None))

    async def _look(self, asset: str) -> None:
        previous = self._known.get(asset)
        info: AssetInfo | None
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                rec = await read_record(self.store, asset)
        except asyncio.CancelledError:
            self._release(asset, previous.info if previous is not None else None)
            raise
        except Exception as e:  # a store down: keep what was known, try again later
            log.warning("analytics: cannot read the record of %s (%s)", asset, e)
            now = time.monotonic()
            info = previous.info if previous is not None else None
            self._known.put(asset, _Known(previous.version if previous else None, info, now,
                                          now + RETRY))
            self._release(asset, info)
            return
        now = time.monotonic()
        if rec is None:
            known = _Known(None, None, now, now + RETRY)
        else:
            try:
                size = await self._download_size(asset, rec)
                info = AssetInfo.from_record(rec, download_bytes=size)
            except asyncio.CancelledError:
                self._release(asset, previous.info if previous is not None else None)
                raise
            except Exception as e:  # a record counting cannot read: hits go without it
                log.warning("analytics: record of %s not understood (%s)", asset, e)
                info = None
            version = rec.get("version")
            live = rec.get("state") == "live"
            known = _Known(version if isinstance(version, str) else None, info, now,
                           now + (LIVE_REFRESH if live else REFRESH))
        self._known.put(asset, known)
        self._release(asset, known.info)

    async def _download_size(self, asset: str, rec: dict[str, Any]) -> int:
        """The progressive file's size (the record's `size` is the whole bundle): counting
        turns a download's byte ranges into media time with it. 0 when unknown."""
        rel = rec.get("download_key")
        if not isinstance(rel, str) or not rel or rec.get("state") == "live":
            return 0
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                stat = await self.store.stat(layout.key(asset, rel))
        except (StoreError, TimeoutError):
            return 0
        return int(stat.size)

    def _release(self, asset: str, info: AssetInfo | None) -> None:
        for hit in self._waiting.pop(asset, ()):
            self.sink.submit(dataclasses.replace(hit, info=info))

    async def settle(self, wait: float) -> None:
        """Wait (at most `wait` seconds) for the record reads in flight, so the hits
        waiting for them are in the recorder's queue (a report asks first)."""
        tasks = list(self._reads.values())
        if tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, wait: float = 2.0) -> None:
        """At shutdown: let the reads in flight finish (briefly), then hand every hit
        still waiting to the recorder, with or without its asset."""
        await self.settle(wait)
        for task in list(self._reads.values()):
            task.cancel()
        for asset in list(self._waiting):
            self._release(asset, None)
