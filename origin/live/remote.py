"""Requests for live streams another process owns: find the owner, forward, or say 503.

`RemoteStreams.answer` is what origin.media asks for an asset not in this process's
registry; `RemoteStreams.route` wraps the ingest and events handlers the same way. Both
return None when the stream is not live anywhere else (the ordinary path answers: the
store, a 404, a 409 for a sealed stream).

A process that does not own a stream never answers for it from what it holds while the
stream's record says live: before a 409 "not live" (ingest, events) or a 404 (an object
the owner has not written to the store yet), `RemoteStreams.unowned` reads the record,
and when it still says live looks the owner up again past every cached entry and
forwards; only an owner that cannot be found or reached makes a 503 with Retry-After
(never cached), which a producer retries and an edge does not keep. A lookup can miss
while the record says live: an entry read just before, a directory read that failed, a
request forwarded here by a process whose entry was stale (it carries HOP, so it is not
forwarded again: 503, and the forwarder reads the entry afresh next time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from manifests import layout
from origin.live.directory import Entry, LiveDirectory
from origin.live.peers import HOP, PeerProxy, PeerUnavailable, unavailable
from packager.publish import read_record

log = logging.getLogger("sori.live")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# When the record says live but no owner is found: look again this many times, this far
# apart (a marker being rewritten on a slow store), before answering 503.
LOOKUPS = 3
LOOKUP_PAUSE = 0.05


class RemoteStreams:
    def __init__(self, directory: LiveDirectory, proxy: PeerProxy) -> None:
        self.directory = directory
        self.proxy = proxy
        self.forwarded = 0
        self.refused = 0

    async def answer(self, request: web.Request, asset_id: str, *,
                     fresh_miss: bool = False) -> web.StreamResponse | None:
        if HOP in request.headers:
            return None  # forwarded to us already: answer from what this process has
        try:
            entry = await self.directory.owner_of(asset_id, fresh_miss=fresh_miss)
        except Exception as e:  # noqa: BLE001 - the store away: what it holds is served
            log.warning("live %s: directory not readable: %s", asset_id, e)
            return None
        if entry is None or entry.local:
            return None
        return await self._forward(request, asset_id, entry)

    async def _forward(self, request: web.Request, asset_id: str,
                       entry: Entry) -> web.StreamResponse:
        if entry.url is None:
            self.refused += 1
            return unavailable(f"live stream {asset_id!r}: its owner {entry.owner} "
                               "has no address yet; try again")
        try:
            self.forwarded += 1
            resp = await self.proxy.forward(request, entry.url)
        except PeerUnavailable as e:
            self.directory.forget(asset_id)
            self.refused += 1
            log.warning("live %s: owner %s not reachable (%s)", asset_id, entry.owner, e)
            return unavailable(f"live stream {asset_id!r}: its origin does not answer; "
                               "try again")
        if resp.status == 503:
            self.directory.forget(asset_id)  # perhaps not the owner any more: read again
        return resp

    async def unowned(self, request: web.Request, asset_id: str) -> web.StreamResponse | None:
        """For a stream this process does not own, just before it answers from what it
        holds (a 409 "not live", a 404): None when the record says the stream is not live
        (sealed, failed, deleted: that answer is right); else the owner's answer, found
        with fresh directory reads, or a 503 with Retry-After when no owner can be found
        or reached (a request forwarded here already is never forwarded again)."""
        rec = await read_record(self.directory.store, asset_id)
        if rec is None or rec.get("state") != "live":
            return None
        entry: Entry | None = None
        if HOP not in request.headers:
            for attempt in range(LOOKUPS):
                if attempt:
                    await asyncio.sleep(LOOKUP_PAUSE * attempt)
                self.directory.forget(asset_id)
                try:
                    entry = await self.directory.owner_of(asset_id)
                except Exception as e:  # noqa: BLE001 - the store away: 503 below
                    log.warning("live %s: directory not readable: %s", asset_id, e)
                    entry = None
                if entry is not None and not entry.local:
                    return await self._forward(request, asset_id, entry)
        self.refused += 1
        why = ("was forwarded here, but this origin does not produce it"
               if HOP in request.headers else
               "is live, but its origin is not known yet" if entry is None else
               "is live, but its origin stopped producing it (it is being sealed)")
        log.warning("live %s: %s; 503", asset_id, why)
        return unavailable(f"live stream {asset_id!r} {why}; try again")

    def route(self, handler: Handler, is_local: Callable[[str], bool]) -> Handler:
        """`handler` of a /v1/live/{id}/... route, forwarded when another process owns
        the stream."""

        async def routed(request: web.Request) -> web.StreamResponse:
            asset_id = request.match_info.get("id", "")
            if layout.is_valid_asset_id(asset_id) and not is_local(asset_id):
                answer = await self.answer(request, asset_id, fresh_miss=True)
                if answer is None and not is_local(asset_id):
                    answer = await self.unowned(request, asset_id)
                if answer is not None:
                    return answer
            return await handler(request)

        routed.__name__ = getattr(handler, "__name__", "routed")
        return routed
