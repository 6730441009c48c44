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
`AssetInfo` is built from the record origin.media reads anyway (before it serves an
asset, then again every ALIVE_FOR seconds while it is in use, in the background; it tells
`observe`), again only when the record changed: no store read of its own. The size of
the progressive file (not in the record) comes from the first download response. Only
when an asset is not known (evicted from this table) does a background task read the
record; the hits of that moment wait in a short list, never the request.

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
from origin.access.client_ip import Network, client_address
from origin.http.object_cache import LruDict
from origin.http.request_head import RequestHead
from packager.publish import read_record
from signing.urls import MARK
from storage.base import Store

log = logging.getLogger("sori.analytics")

PREFIX = "/assets/"
DOWNLOAD_PREFIX = "/v1/assets/"
DOWNLOAD_SUFFIX = "/download"
DOWNLOAD = "download"  # the rel of a progressive download
INFO_ENTRIES = 16384  # assets whose AssetInfo is kept
WAITING_MAX = 512  # hits of one asset held while its record is read; then sent without
RETRY = 10.0  # seconds: a segment of another version makes a read after this long
READ_TIMEOUT = 10.0
# Identical responses (same object, status, bytes, client, CMCD) within this many seconds
# are recorded as one hit with their bytes added: what counting reads of them (the
# client's media time, bytes) is the same, and a client hammering one object (a load
# test, a retrying player) then costs the writer one row, not one per request.
COALESCE = 1.0
COALESCE_MAX = 20_000  # distinct responses waiting at most before a flush
# origin.live.peers.HOP (not imported: origin.live imports origin.app, which imports this):
# a request another worker forwarded here is recorded by that worker, which answered it.
PEER_HOP = "X-Sori-Peer"
_PEER_FIELD = PEER_HOP.lower()
CMCD_HEADERS = ("CMCD-Request", "CMCD-Object", "CMCD-Status", "CMCD-Session")
_CMCD_FIELDS = tuple(name.lower() for name in CMCD_HEADERS)
# Request fields that make a fast-lane hit more than (target, client address, User-Agent).
_SPECIAL_FIELDS = frozenset((_PEER_FIELD, "x-forwarded-for", *_CMCD_FIELDS))


HitTuple = tuple[Any, ...]  # analytics.events.Hit's fields in order (what the writer takes)
_INFO = len(dataclasses.fields(Hit)) - 1  # the position of `info`, the last field
assert dataclasses.fields(Hit)[_INFO].name == "info"


class Sink(Protocol):
    """Where hits go: analytics.writer.link.WriterLink (its submit never blocks), as tuples
    of Hit's fields in order (a tuple is what crosses to the writer process)."""

    def submit(self, hit: HitTuple) -> object: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Known:
    version: str | None  # the record's version when read
    info: AssetInfo | None  # None: no record (deleted) or unreadable
    read_at: float  # time.monotonic() of the last read
    stamp: object  # what of the record, changed, makes the info be built again


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
        self._waiting: dict[str, list[HitTuple]] = {}
        # (asset, rel, method, status, bytes, address, User-Agent, CMCD) -> [first time,
        # responses, AssetInfo]: identical responses waiting to be one hit (flush()).
        self._coalesced: dict[tuple[str, str, str, int, int, str, str, str | None],
                              list[Any]] = {}
        # The fast lane's raw request fields -> the entry of _coalesced they joined.
        self._seen: dict[tuple[Any, ...], list[Any]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._reads: dict[str, asyncio.Task[None]] = {}
        self.reads = 0  # records this object read itself (not through origin.media)

    # --- from the two answering paths ------------------------------------------------------

    def response(self, request: web.BaseRequest, resp: web.StreamResponse | None, status: int,
                 nbytes: int) -> None:
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
        if found[1] == "download" and resp is not None and status in (200, 206):
            self._note_download_size(found[0], resp)
        cmcd = request.query.get("CMCD") if request.query_string else None
        if "CMCD-Request" in headers or "CMCD-Session" in headers or \
                "CMCD-Object" in headers or "CMCD-Status" in headers:
            cmcd = join_cmcd(cmcd, *(headers.get(n) for n in CMCD_HEADERS))
        ip = client_address(request.remote, headers.get("X-Forwarded-For"), self.trusted)
        self.add(found[0], found[1], method, status, nbytes, headers.get("Range"), ip or "",
                 headers.get("User-Agent") or "", cmcd)

    def lane(self, head: RequestHead, nbytes: int, peer: str | None) -> None:
        """A 200 the fast lane answered (origin.fast_lane): no Range, no conditionals.

        The hottest path of the analytics: a request the same client made within the
        coalescing window costs one tuple and one dictionary lookup (what it adds to is
        the same hit its first answer made: everything a hit holds follows from these
        fields)."""
        fields = head.fields
        if _SPECIAL_FIELDS.isdisjoint(fields):  # the common case: the client is the socket's
            key: tuple[Any, ...] = (head.target, head.method, nbytes, peer,
                                    fields.get("user-agent"))
            xff = cmcd_fields = None
        else:
            if _PEER_FIELD in fields:
                return
            xff = fields.get("x-forwarded-for")
            cmcd_fields = tuple(fields.get(n) for n in _CMCD_FIELDS)
            key = (head.target, head.method, nbytes, peer, fields.get("user-agent"), xff,
                   cmcd_fields)
        entry = self._seen.get(key)
        if entry is not None:
            entry[1] += 1
            return
        path, _, query = head.target.partition("?")
        found = media_object(path)
        if found is None:
            return
        cmcd = cmcd_query(query) if query else None
        if cmcd_fields is not None and any(cmcd_fields):
            cmcd = join_cmcd(cmcd, *cmcd_fields)
        ip = client_address(peer, xff, self.trusted)
        entry = self.add(found[0], found[1], head.method, 200, nbytes, None, ip or "",
                         key[4] or "", cmcd)
        if entry is not None:
            if len(self._seen) >= COALESCE_MAX:
                self.flush()
            else:
                self._seen[key] = entry

    # --- the hit, with what is known of its asset -----------------------------------------

    def add(self, asset: str, rel: str, method: str, status: int, nbytes: int,
            byte_range: str | None, ip: str, ua: str, cmcd: str | None) -> list[Any] | None:
        """Record a response; the coalescing entry it joined, if it joined one."""
        known = self._known.get(asset)
        if known is not None:
            # A segment of another version than the record said: re-packaged since
            # (origin.media reads the record again within ALIVE_FOR), or an old URL.
            if (rel.startswith("v/") and known.version is not None
                    and not rel.startswith(f"v/{known.version}/")
                    and time.monotonic() - known.read_at >= RETRY):
                self._read(asset)
            if byte_range is None and rel != DOWNLOAD:
                # Coalesced: the same response to the same client within COALESCE seconds
                # is one hit with the bytes of all (a segment's span does not depend on
                # its bytes; a ranged or download response's does, so those go alone).
                key = (asset, rel, method, status, nbytes, ip, ua, cmcd)
                entry = self._coalesced.get(key)
                if entry is not None:
                    entry[1] += 1
                    return entry
                entry = self._coalesced[key] = [time.time(), 1, known.info]
                if self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(COALESCE,
                                                                        self.flush)
                elif len(self._coalesced) >= COALESCE_MAX:
                    self.flush()
                    return None  # handed over already: a repeat starts a new entry
                return entry
            self.sink.submit((time.time(), asset, rel, method, status, nbytes, byte_range, ip,
                              ua, cmcd, "origin", known.info))
            return None
        # Not known (origin.media read the record before another module was told, or long
        # ago): the hit waits for a read of the record.
        hit = (time.time(), asset, rel, method, status, nbytes, byte_range, ip, ua, cmcd,
               "origin", None)
        waiting = self._waiting.get(asset)
        if waiting is None:
            self._waiting[asset] = [hit]
            self._read(asset)
        elif len(waiting) < WAITING_MAX:
            waiting.append(hit)
        else:
            self.sink.submit(hit)
        return None

    def flush(self) -> None:
        """Hand the coalesced hits to the writer (every COALESCE seconds, when
        COALESCE_MAX are waiting, before a report and at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._coalesced = self._coalesced, {}
        self._seen = {}
        submit = self.sink.submit
        for (asset, rel, method, status, nbytes, ip, ua, cmcd), (ts, n, info) in \
                pending.items():
            submit((ts, asset, rel, method, status, nbytes * n, None, ip, ua, cmcd, "origin",
                    info))

    # --- what is known of each asset ----------------------------------------------------------

    def observe(self, asset: str, rec: dict[str, Any]) -> None:
        """A record origin.media just read (every ALIVE_FOR seconds per asset in use):
        AssetInfo is built again only when the record changed."""
        try:
            known = self._known.get(asset)
            now = time.monotonic()
            version = rec.get("version")
            version = version if isinstance(version, str) else None
            stamp = (rec.get("state"), rec.get("duration"), rec.get("updated"))
            if known is not None and known.version == version and known.stamp == stamp:
                self._known.put(asset, dataclasses.replace(known, read_at=now))
                return
            self._learn(asset, rec, known, now)
        except Exception:  # never into origin.media's request
            log.exception("analytics: the record of %s not understood", asset)

    def _learn(self, asset: str, rec: dict[str, Any], previous: _Known | None,
               now: float) -> None:
        version = rec.get("version")
        version = version if isinstance(version, str) else None
        size = (previous.info.download_bytes if previous is not None
                and previous.info is not None and previous.version == version else 0)
        try:
            info: AssetInfo | None = AssetInfo.from_record(rec, download_bytes=size)
        except Exception as e:  # a record counting cannot read: hits go without it
            log.warning("analytics: record of %s not understood (%s)", asset, e)
            info = None
        stamp = (rec.get("state"), rec.get("duration"), rec.get("updated"))
        self._known.put(asset, _Known(version, info, now, stamp))
        self._release(asset, info)

    def delivered(self, request: web.BaseRequest, asset: str, start: int, nbytes: int,
                  total: int) -> None:
        """Bytes [start, start + nbytes) of an asset's progressive file (of `total` bytes)
        sent inside another response, an offline bundle (origin.offline): counted as that
        much of a ranged download of the file, so a bundle taken for offline listening
        counts like the download it contains (IAB v2.3 counts downloaded files)."""
        if nbytes <= 0 or PEER_HOP in request.headers:
            return
        known = self._known.get(asset)
        if known is not None and known.info is not None and not known.info.download_bytes:
            info = dataclasses.replace(known.info, download_bytes=total)
            self._known.put(asset, dataclasses.replace(known, info=info))
        headers = request.headers
        ip = client_address(request.remote, headers.get("X-Forwarded-For"), self.trusted)
        self.add(asset, "download", "GET", 206, nbytes, f"bytes={start}-{start + nbytes - 1}",
                 ip or "", headers.get("User-Agent") or "", None)

    def _note_download_size(self, asset: str, resp: web.StreamResponse) -> None:
        """The progressive file's size, from a download response (the record's `size` is
        the whole bundle): counting turns a download's byte ranges into media time."""
        known = self._known.get(asset)
        if known is None or known.info is None or known.info.download_bytes:
            return
        total = resp.content_length if resp.status == 200 else None
        if resp.status == 206:
            _, _, tail = (resp.headers.get("Content-Range") or "").rpartition("/")
            total = int(tail) if tail.isdigit() else None
        if total:
            info = dataclasses.replace(known.info, download_bytes=total)
            self._known.put(asset, dataclasses.replace(known, info=info))

    def _read(self, asset: str) -> None:
        if asset in self._reads:
            return
        task = asyncio.get_running_loop().create_task(self._look(asset))
        self._reads[asset] = task
        task.add_done_callback(lambda _t: self._reads.pop(asset, None))

    async def _look(self, asset: str) -> None:
        """A read of the record by this object (rare: origin.media normally tells it)."""
        previous = self._known.get(asset)
        self.reads += 1
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                rec = await read_record(self.store, asset)
        except asyncio.CancelledError:
            self._release(asset, previous.info if previous is not None else None)
            raise
        except Exception as e:  # a store down: keep what was known, try again later
            log.warning("analytics: cannot read the record of %s (%s)", asset, e)
            rec = None
        now = time.monotonic()
        if rec is None:  # deleted, or unreadable: what was known stands, for a while
            info = previous.info if previous is not None else None
            self._known.put(asset, _Known(previous.version if previous else None, info, now,
                                          previous.stamp if previous else None))
            self._release(asset, info)
            return
        self._learn(asset, rec, previous, now)

    def _release(self, asset: str, info: AssetInfo | None) -> None:
        for hit in self._waiting.pop(asset, ()):
            self.sink.submit(hit[:_INFO] + (info,))

    async def settle(self, wait: float) -> None:
        """Wait (at most `wait` seconds) for the record reads in flight, so the hits
        waiting for them are in the recorder's queue (a report asks first)."""
        self.flush()
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
