"""Answering for a live stream another worker or replica owns: proxy to the owner.

A live stream has one owner, the process that ingests it (packager.live.registry). Every
other worker of the origin, and every other origin replica on the same store, answers
the stream's requests by forwarding them to the owner's internal address (written in the
stream's directory entry, origin.live.directory) and streaming the answer back, as
MediaMTX and OvenMediaEngine do between their nodes: playlists (a blocking reload is
held exactly as long as the owner holds it), preload-hinted parts, the segment in
progress with chunked transfer, the MPD, Server-Sent Events, and the ingest endpoints
(chunks, end, the streaming PUT and the WebSocket) so that a producer's requests may land
on any worker.

The forwarded request keeps its method, raw path and query (a signed URL's token stays in
the path, so the owner checks it), its body (streamed), and every end-to-end header
(Authorization, Range, Accept-Encoding, If-*, Origin, Host); X-Forwarded-For gets the
client's address appended. The answer comes back as the owner made it (status, headers,
bytes, gzip untouched), streamed, never a redirect. Connections to peers are kept alive
in one pool per process. A request that was forwarded once carries HOP and is never
forwarded again (no loops when an entry is out of date). An owner that cannot be reached
is a 503 with Retry-After and no-store, never a broken playlist; the directory entry is
read again on the next request, and the owner's death is handled by the sweep
(origin.live.directory) that seals the stream from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import ClientConnectionResetError, WSMsgType, web
from multidict import CIMultiDict

from origin.errors import json_error
from origin.http import headers as h
from origin.keys import BYTES_SENT, STREAMING

log = logging.getLogger("sori.live")

HOP = "X-Sori-Peer"  # on a request one worker forwarded to another: never forwarded again
CONNECT_TIMEOUT = 2.0  # seconds to reach a peer before answering 503
READ_TIMEOUT = 120.0  # longest silence on a forwarded response (the owner holds less)
BUFFER_MAX = 1024 * 1024  # request bodies up to this are sent whole (with a length)
RETRY_AFTER = "1"
VIA = "1.1 sori-peer"

# RFC 9110 §7.6.1: connection-specific fields are not forwarded; Content-Length is set by
# whoever writes the body; Date and Server by whoever writes the status line.
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "proxy-connection", "te", "trailer",
                         "transfer-encoding", "upgrade", "content-length"))
_RESPONSE_DROP = _HOP_BY_HOP | {"date", "server"}
_WS_DROP = _HOP_BY_HOP | {"sec-websocket-key", "sec-websocket-version",
                          "sec-websocket-extensions", "sec-websocket-accept",
                          "sec-websocket-protocol"}


class PeerUnavailable(Exception):
    """The owner could not be reached (before any byte of its answer)."""


def unavailable(message: str) -> web.Response:
    resp = json_error(503, message)
    resp.headers[h.CACHE_CONTROL] = h.NO_STORE
    resp.headers[h.RETRY_AFTER] = RETRY_AFTER
    return resp


def forwarded_headers(request: web.BaseRequest, drop: frozenset[str] = _HOP_BY_HOP
                      ) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        if name.lower() not in drop and name.lower() != "x-forwarded-for":
            out.add(name, value)
    client = request.remote
    previous = request.headers.get("X-Forwarded-For")
    if client:
        out["X-Forwarded-For"] = f"{previous}, {client}" if previous else client
    elif previous:
        out["X-Forwarded-For"] = previous
    out[HOP] = "1"
    return out


class PeerProxy:
    """Forwards requests to peers over one keep-alive pool (made in the serving loop)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60.0,
                                             force_close=False, use_dns_cache=True)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT,
                                              sock_read=READ_TIMEOUT),
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(self, request: web.Request, base_url: str) -> web.StreamResponse:
        """The owner's answer to `request`, streamed back. Raises PeerUnavailable when the
        owner cannot be reached before its answer starts."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.forward_websocket(request, base_url)
        url = base_url + request.rel_url.raw_path_qs
        data: Any = None
        if request.body_exists:
            if request.content_length is not None and request.content_length <= BUFFER_MAX:
                data = await request.read()
            else:
                data = _body(request)
        try:
            upstream = await self.session().request(
                request.method, url, headers=forwarded_headers(request), data=data,
                allow_redirects=False, compress=None)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError,
                OSError) as e:
            raise PeerUnavailable(f"{base_url}: {e.__class__.__name__}: {e}") from e
        try:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _RESPONSE_DROP:
                    resp.headers.add(name, value)
            resp.headers.add("Via", VIA)  # RFC 9110 §7.6.3: a proxy says so
            length = upstream.headers.get(h.CONTENT_LENGTH)
            chunked = "chunked" in upstream.headers.get("Transfer-Encoding", "").lower()
            if length is not None and length.isdigit() and not chunked:
                resp.content_length = int(length)
            request[STREAMING] = True
            sent = 0
            try:
                await resp.prepare(request)
                if request.method != "HEAD":
                    try:
                        async for chunk in upstream.content.iter_any():
                            await resp.write(chunk)
                            sent += len(chunk)
                    except ClientConnectionResetError:
                        raise
                    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError,
                            TimeoutError) as e:
                        # The status line is out: all that is left is to drop the
                        # connection so the client sees an incomplete answer, never a
                        # short one.
                        raise ConnectionResetError(
                            f"the owner's answer broke off: {e}") from e
                await resp.write_eof()
            except ClientConnectionResetError:
                # The client left (a player aborting a request, an ABR switch): routine,
                # no error and no traceback; aiohttp closes the connection it finds closing.
                pass
            request[BYTES_SENT] = sent
            return resp
        finally:
            upstream.release()

    async def forward_websocket(self, request: web.Request,
                                base_url: str) -> web.StreamResponse:
        """A WebSocket (live ingest) relayed to the owner, frame by frame."""
        url = base_url + request.rel_url.raw_path_qs
        try:
            upstream = await self.session().ws_connect(
                url, headers=forwarded_headers(request, _WS_DROP), max_msg_size=0,
                autoclose=False, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            return json_error(e.status if e.status >= 400 else 502, e.message or "refused")
        except (aiohttp.ClientConnectionError, TimeoutError, OSError) as e:
            raise PeerUnavailable(f"{base_url}: {e.__class__.__name__}: {e}") from e
        ws = web.WebSocketResponse(max_msg_size=0, autoclose=False, heartbeat=20.0)
        try:
            await ws.prepare(request)
            request[STREAMING] = True
            request[BYTES_SENT] = 0
            to_owner = asyncio.ensure_future(_relay(ws, upstream))
            to_client = asyncio.ensure_future(_relay(upstream, ws))
            await asyncio.wait((to_owner, to_client), return_when=asyncio.FIRST_COMPLETED)
            # One side closed: let the other say its last words (the sealed record), then
            # close both.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(to_owner, to_client,
                                                      return_exceptions=True), 30.0)
            for task in (to_owner, to_client):
                task.cancel()
        finally:
            with contextlib.suppress(Exception):
                await upstream.close()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws


async def _relay(src: Any, dst: Any) -> None:
    async for msg in src:
        if msg.type == WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                          WSMsgType.ERROR):
            break
    with contextlib.suppress(Exception):
        await dst.close(code=src.close_code or 1000)


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for piece in request.content.iter_any():
        yield piece
