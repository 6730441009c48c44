"""Requests for live streams another process owns: find the owner, forward, or say 503.

`RemoteStreams.answer` is what origin.media asks for an asset not in this process's
registry; `RemoteStreams.route` wraps the ingest and events handlers the same way. Both
return None when the stream is not live anywhere else (the ordinary path answers: the
store, a 404, a 409 for a sealed stream).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from manifests import layout
from origin.live.directory import LiveDirectory
from origin.live.peers import HOP, PeerProxy, PeerUnavailable, unavailable

log = logging.getLogger("sori.live")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        if entry.url is None:
            self.refused += 1
            return unavailable(f"live stream {asset_id!r}: its owner {entry.owner} "
                               "has no address yet; try again")
        try:
            self.forwarded += 1
            return await self.proxy.forward(request, entry.url)
        except PeerUnavailable as e:
            self.directory.forget(asset_id)
            self.refused += 1
            log.warning("live %s: owner %s not reachable (%s)", asset_id, entry.owner, e)
            return unavailable(f"live stream {asset_id!r}: its origin does not answer; "
                               "try again")

    def route(self, handler: Handler, is_local: Callable[[str], bool]) -> Handler:
        """`handler` of a /v1/live/{id}/... route, forwarded when another process owns
        the stream."""

        async def routed(request: web.Request) -> web.StreamResponse:
            asset_id = request.match_info.get("id", "")
            if layout.is_valid_asset_id(asset_id) and not is_local(asset_id):
                answer = await self.answer(request, asset_id, fresh_miss=True)
                if answer is not None:
                    return answer
            return await handler(request)

        routed.__name__ = getattr(handler, "__name__", "routed")
        return routed
