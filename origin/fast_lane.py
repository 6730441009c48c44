"""The fast lane: cached media answered straight from the connection, everything else by aiohttp.

Measured on the 2-core machines (bench/origin): aiohttp's per-request machinery
(request and response objects, routing, middleware, a task per request) caps an
in-memory origin at about 24,000 segment responses a second with two
processes, while the same bytes written by a bare asyncio protocol reach
nginx's 45,000. The fast lane takes that machinery off the path of the one
request that dominates an origin's traffic: a plain GET or HEAD of an object
already in the media cache; and of the player page's own files (origin/pages.py,
from its memory), which a browser asks for a dozen at once when the page opens.

`FastLaneHandler` is aiohttp's own connection handler (`RequestHandler`) with
one step in front of its parser. Incoming bytes are cut into request heads;
for each complete head, when aiohttp has nothing in progress on the
connection, `Lane.answer` may answer it at once from the cache (status line,
precomputed headers and the cached body, written in one `writelines`).
Every other head is given to aiohttp unchanged, whole, so its parser always
stops at a message boundary and it answers as it always does; requests are
answered strictly in order because a head is only answered here while no
request handed to aiohttp is unfinished (`_pending`). A request with content
(an upload), an Upgrade, or anything not in plain form (origin/http/request_head.py)
hands the rest of the connection to aiohttp for good.

What the lane answers is exactly what origin.media (or origin.pages) would
answer for the same request: 200 with the same headers (including CORS for `*`
origins, gzip when accepted for page files), the same metrics and the same
access-log line. Everything that needs a decision (Range, If-*, gzip of a
playlist, a listed CORS origin, `Connection` other than keep-alive, HTTP/1.0, a
query string on media other than a lone `CMCD=...`, the data players append to every
segment request) goes to aiohttp. Each media 200 it answers is handed to the
analytics (origin.observe.hits) as `edge` hands aiohttp's.

It leans on aiohttp's RequestHandler internals (`_handle_request`, `_messages`,
`_close`, `_force_close`, `_paused`, `_next_keepalive_close_time`), which is why
setup.cfg pins aiohttp to 3.14.x; tests/integration/test_origin_fast_lane.py
checks ordering, pipelining, hand-over and parity with the aiohttp path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler

from origin import pages
from origin.access.client_ip import client_address
from origin.access.guard import cap_max_age, capped_seconds
from origin.app import ACCESS_LOG_KEY, HITS_KEY, MEDIA_KEY
from origin.http import headers as h
from origin.http.conditional import format_http_date
from origin.http.representation import Representation, accepts_gzip
from origin.http.request_head import HEAD_END, MAX_HEAD, RequestHead, parse_head
from origin.media import PREFIX, MediaHandler
from origin.observe.accesslog import AccessLog
from origin.observe.hits import Hits, cmcd_query
from origin.observe.metrics import METRICS_KEY, ROUTE_MEDIA, ROUTE_PAGE, Metrics
from signing.tokens import TokenError
from signing.urls import MARK

# Request fields that make the answer depend on more than the object: aiohttp decides.
_DEFER_FIELDS = frozenset(("range", "if-range", "if-match", "if-none-match", "if-modified-since",
                           "if-unmodified-since", "expect"))
_STATUS_200 = b"HTTP/1.1 200 OK\r\n"
CAPPED_HEADS = 64  # header blocks kept per object for signed URLs (one per capped max-age)
SIGNED_TARGETS = 65536  # signed request targets a lane remembers it admitted


class HttpDate:
    """The Date field value, formatted once per second."""

    __slots__ = ("_second", "_line")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {format_http_date(now)}\r\n".encode()
        return self._line


def wire_headers(headers: dict[str, str], length: int) -> bytes:
    """The header block of a 200 (everything but Date), as sent on the wire."""
    fields = {**headers, h.CONTENT_LENGTH: str(length), "Server": SERVER_SOFTWARE}
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode("latin-1")


class Lane:
    """Answers plain GET/HEAD requests for cached media; shared by a worker's connections."""

    def __init__(self, media: MediaHandler, metrics: Metrics, access_log: AccessLog,
                 serve_pages: bool = True, hits: Hits | None = None) -> None:
        self.media = media
        self.serve_pages = serve_pages
        self.metrics = metrics
        self.access_log = access_log
        self.hits = hits  # listening analytics, when on
        self.date = HttpDate()
        self.answered = 0  # requests this lane answered (tests and debugging)
        # request target -> (object key, asset id, token expiry, client): signed URLs
        # admitted before, so a listener's next request of it costs one lookup
        self._signed: dict[str, tuple[str, str, float, str | None]] = {}

    def answer(self, head: RequestHead, peer: str | None = None,
               ) -> tuple[tuple[bytes, ...], int, str | None] | None:
        """(the response's bytes, body bytes, cache result) for a request this lane
        answers (a 200 with nothing to decide), after the bookkeeping origin.app's `edge`
        does; None for any other request. `peer`: the socket's peer address (a signed
        URL may be bound to the client's)."""
        if not self._plain(head):
            return None
        target = head.target
        if target.startswith(PREFIX):
            if "?" in target:
                # Only a lone CMCD= query: it changes nothing in the answer (origin.media
                # reads the path alone); the analytics read it from the head.
                path, _, query = target.partition("?")
                if cmcd_query(query) is None:
                    return None
                target = path
            found = self.lookup(head, peer, target)
            if found is None:
                return None
            rep, cap = found
            return self.respond(head, rep, cap)
        return self.page(head) if self.serve_pages else None

    @staticmethod
    def _plain(head: RequestHead) -> bool:
        if head.method not in ("GET", "HEAD") or head.minor != 1:
            return False
        fields = head.fields
        if not _DEFER_FIELDS.isdisjoint(fields):
            return False
        host = fields.get("host")
        if not host or "," in host:
            return False  # RFC 9112 §3.2: exactly one Host, or aiohttp's 400
        connection = fields.get("connection")
        return connection is None or connection.lower() == "keep-alive"

    def lookup(self, head: RequestHead, peer: str | None = None,
               target: str | None = None) -> tuple[Representation, float | None] | None:
        """The cached media to answer `head` (a plain GET/HEAD) with as a 200, and the
        expiry of the token that admitted it (a private asset's), or None. `target`: the
        head's request target without its CMCD query."""
        fields = head.fields
        if target is None:
            target = head.target
        media = self.media
        signed = self._signed.get(target)
        if signed is not None:
            # A signed URL this lane admitted before: the same object, the same grant
            # (still checked: its expiry, the client it was for, the asset still private).
            key, asset_id, until, client = signed
            state = media.state(asset_id)
            if (state is None or not state[1] or time.time() >= until
                    or client != client_address(peer, fields.get("x-forwarded-for"),
                                                media.guard.trusted)):
                del self._signed[target]
                return None  # origin.media decides
            rep = media.cache.get(key)
            if rep is None or rep.body is None:
                return None
            return self._negotiable(fields, rep, until)
        key = target[len(PREFIX):]
        asset_id, _, rest = key.partition("/")
        token = None
        if rest.startswith(MARK):  # a signed URL: the object's key is without the token
            token, _, rel = rest[1:].partition("/")
            key = f"{asset_id}/{rel}"
        rep = media.cache.get(key)  # only checked keys are cached
        if rep is None or rep.body is None:
            return None
        state = media.state(asset_id)
        if state is None:
            return None  # an asset this worker has not looked up: origin.media does
        expires: float | None = None
        if state[1]:  # private
            client = client_address(peer, fields.get("x-forwarded-for"), media.guard.trusted)
            try:
                expires = media.guard.grant(token, asset_id, client).expires
            except TokenError:
                return None  # origin.media refuses it (and counts the failure)
            if len(self._signed) >= SIGNED_TARGETS:
                self._signed.clear()
            self._signed[target] = (key, asset_id, expires, client)
        return self._negotiable(fields, rep, expires)

    def _negotiable(self, fields: dict[str, str], rep: Representation,
                    expires: float | None) -> tuple[Representation, float | None] | None:
        """`rep` unless the request needs a negotiation origin.media does."""
        if rep.compressible and "accept-encoding" in fields:
            return None  # gzip or identity: a negotiation, left to origin.media
        if not self.media.cors.any_origin and "origin" in fields:
            return None  # the allowed origin is echoed per request
        return rep, expires

    def respond(self, head: RequestHead, rep: Representation,
                expires: float | None = None) -> tuple[tuple[bytes, ...], int, str | None]:
        """The cached 200; for a signed URL (`expires`: its token's) with the max-age
        capped as origin.access caps it."""
        if expires is not None:
            seconds = capped_seconds(expires - time.time())
            heads = rep.capped_heads
            if heads is None:
                heads = rep.capped_heads = {}
            found = heads.get(seconds)
            if found is None:
                if len(heads) >= CAPPED_HEADS:
                    heads.clear()
                headers = dict(rep.headers)
                headers[h.CACHE_CONTROL] = cap_max_age(headers[h.CACHE_CONTROL], seconds)
                found = heads[seconds] = wire_headers(headers, rep.size)
            block = found
        elif rep.wire_head is not None:
            block = rep.wire_head
        else:
            block = rep.wire_head = wire_headers(rep.headers, rep.size)
        body = rep.body
        assert body is not None
        self.metrics.cache_hits.inc()
        return self._reply(head, ROUTE_MEDIA, block, body, "hit")

    def page(self, head: RequestHead) -> tuple[tuple[bytes, ...], int, str | None] | None:
        """The player page and its files (origin/pages.py), from its memory."""
        found = pages.resolve(head.target.partition("?")[0])
        if found is None:
            return None
        path, content_type, cache = found
        gz = accepts_gzip(head.fields.get("accept-encoding"))
        plain = pages.plain_200(path, content_type, cache, gz)
        if plain is None:
            return None  # missing: aiohttp's 404 says how to install it
        headers, body = plain
        return self._reply(head, ROUTE_PAGE, wire_headers(headers, len(body)), body, None)

    def _reply(self, head: RequestHead, route: str, block: bytes, body: bytes,
               cache: str | None) -> tuple[tuple[bytes, ...], int, str | None]:
        """The 200 on the wire (no body for HEAD), counted as `edge` counts it."""
        self.answered += 1
        nbytes = 0 if head.method == "HEAD" else len(body)
        self.metrics.observe_request(route, 200, nbytes)
        parts = (_STATUS_200, self.date.line(), block, b"\r\n")
        return (parts + (body,) if nbytes else parts), nbytes, cache


class FastLaneHandler(RequestHandler):
    """aiohttp's connection handler with the fast lane in front of its parser."""

    def __init__(self, manager: web.Server, *, lane: Lane, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._lane = lane
        self._partial = b""  # the start of a head not yet complete
        self._pending = 0  # heads given to aiohttp and not yet answered by it
        self._passthrough = False  # aiohttp has the connection for good
        self._gone: asyncio.Future[None] = self._loop.create_future()  # connection_lost

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if not self._gone.done():
            self._gone.set_result(None)

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 - aiohttp's
        """aiohttp's graceful shutdown, then the wait for the bytes still buffered.

        A response the lane wrote is not a running handler aiohttp would wait for: to a
        slow reader, megabytes of it can still sit in the transport's buffer. Closing the
        transport sends them before the connection is lost; the process must live until
        then (or the timeout), as it does for a response aiohttp is still writing.
        """
        deadline = self._loop.time() + (timeout or 0.0)
        await super().shutdown(timeout)
        if not self._gone.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._gone),
                                       max(0.1, deadline - self._loop.time()))

    # aiohttp calls this for every message it parsed, the error ones included.
    async def _handle_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._handle_request(*args, **kwargs)
        finally:
            self._pending -= 1

    def data_received(self, data: bytes) -> None:
        if self._passthrough or not data:  # b"": aiohttp re-parsing its own buffer
            super().data_received(data)
            return
        buf = self._partial + data if self._partial else data
        start = 0
        while True:
            end = buf.find(HEAD_END, start)
            if end < 0:
                break
            end += len(HEAD_END)
            chunk = buf[start:end]
            head = parse_head(chunk)
            if head is None or not head.bodyless:
                self._hand_over(buf[start:])
                return
            if not self._answer(head):
                self._pending += 1
                super().data_received(chunk)
            start = end
        rest = buf[start:]
        if len(rest) > MAX_HEAD or rest.count(b"\n") != rest.count(b"\r\n"):
            # Too long, or lines ending in a bare LF (which aiohttp may accept or refuse,
            # but which never form the CRLF CRLF this lane waits for).
            self._hand_over(rest)
            return
        self._partial = rest

    def _hand_over(self, data: bytes) -> None:
        self._passthrough = True
        self._partial = b""
        super().data_received(data)

    def _answer(self, head: RequestHead) -> bool:
        transport = self.transport
        if (self._pending or self._paused or self._close or self._force_close
                or transport is None or transport.is_closing()):
            return False
        lane = self._lane
        t0 = time.perf_counter()
        peer = transport.get_extra_info("peername")
        answer = lane.answer(head, peer[0] if isinstance(peer, tuple) and peer else None)
        if answer is None:
            return False
        parts, nbytes, cache = answer
        transport.writelines(parts)
        if self._keepalive_timeout > 0:
            self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
        if lane.access_log.enabled:
            lane.access_log.write(
                head.method, head.target.partition("?")[0], 200, nbytes,
                time.perf_counter() - t0, None, cache,
                peer[0] if isinstance(peer, tuple) else None, head.fields.get("user-agent"))
        if lane.hits is not None and cache is not None:  # media (pages have no cache result)
            lane.hits.lane(head, nbytes, peer[0] if isinstance(peer, tuple) and peer else None)
        return True


class LaneServer(web.Server):
    """aiohttp's Server (the protocol factory) making FastLaneHandlers."""

    def __init__(self, plain: web.Server, lane: Lane) -> None:
        super().__init__(plain.request_handler, request_factory=plain.request_factory,
                         handler_cancellation=plain.handler_cancellation, loop=plain._loop,
                         **plain._kwargs)
        self.lane = lane

    def __call__(self) -> RequestHandler:
        return FastLaneHandler(self, loop=self._loop, lane=self.lane, **self._kwargs)


class OriginRunner(web.AppRunner):
    """AppRunner whose server puts the fast lane in front of the app (`lane(app)`)."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        app = self.app
        if MEDIA_KEY not in app:  # an app without media (e.g. pages alone): nothing to speed up
            return plain
        serve_pages = "player-index" in app.router.named_resources()  # origin.pages is set up
        return LaneServer(plain, Lane(app[MEDIA_KEY], app[METRICS_KEY], app[ACCESS_LOG_KEY],
                                      serve_pages, app.get(HITS_KEY)))
