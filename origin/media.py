"""`GET/HEAD /assets/{id}/{path}`: packaged media, the way CDNs and players expect it.

Every response is decided before a byte moves (as aiohttp's web_fileresponse.py
does): path → object class → stat (or the cache) → preconditions → variant
(gzip) → range → send. Bytes come from memory for small immutable objects and
briefly for the entry manifests; otherwise with sendfile from a local store or
streamed in chunks from the store, never read whole to serve a range.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any

from aiohttp import web

from manifests import layout
from origin.access.guard import AccessGuard
from origin.errors import json_error
from origin.http import headers as h
from origin.http.cache_policy import CachePolicy, ObjectClass, classify
from origin.http.conditional import Outcome, evaluate, if_range_allows
from origin.http.cors import CorsPolicy
from origin.http.object_cache import LruDict, ObjectCache, SingleFlight
from origin.http.ranges import ByteRange, RangeNotSatisfiable, parse_range
from origin.http.representation import Representation, accepts_gzip, compress
from origin.keys import BYTES_SENT, CACHE_RESULT, GRANT, PREPARED, STREAMING
from origin.observe.metrics import Metrics
from packager.publish import read_record
from settings import Config
from signing.urls import split_token
from storage.base import Store, check_key
from storage.errors import InvalidKey, NotFound, StoreUnavailable

log = logging.getLogger("sori.origin")

PREFIX = "/assets/"
STAT_CACHE_ENTRIES = 16384
# How often a worker looks again at the record of an asset it serves from memory (in the
# background, while it goes on answering): a DELETE answered by another worker (or another
# origin on the same store) stops this one serving the asset's bytes within this time and
# one look at the store.
ALIVE_FOR = 2.0
SENDFILE_MIN = 64 * 1024  # smaller uncached objects are cheaper to stream than to sendfile
SENDFILE_SLICE = 1024 * 1024  # bytes handed to one sendfile call (progress for analytics)
_NOT_MODIFIED_DROP = (h.CONTENT_TYPE, h.CONTENT_ENCODING, h.ACCEPT_RANGES)
_LOAD_ATTEMPTS = 3


def split_media_path(raw_path: str) -> tuple[str, str | None, str]:
    """(asset id, the token of a signed URL or None, path relative to the asset) from the
    undecoded request path, checked as parse_media_path checks it (signing.urls says
    where a token travels)."""
    if not raw_path.startswith(PREFIX):
        raise NotFound("not a media path")
    asset_id, sep, rest = raw_path[len(PREFIX):].partition("/")
    token, rel = split_token(rest)
    key, rel = parse_media_path(f"{PREFIX}{asset_id}{sep}{rel}")
    return asset_id, token, rel


def parse_media_path(raw_path: str) -> tuple[str, str]:
    """(store key, path relative to the asset) from the *undecoded* request path.

    Working on the raw path means a percent-encoded '/', '.', '\\' or NUL can never
    turn into a separator or a dot segment after routing: `check_key` refuses '%'
    outright (packaged keys never contain it), as it refuses '..', '.', empty
    segments, backslashes and NUL. Raises InvalidKey (400) or NotFound (404).
    """
    if not raw_path.startswith(PREFIX):
        raise NotFound("not a media path")
    key = raw_path[len(PREFIX):]
    asset_id, sep, rel = key.partition("/")
    if not key:
        raise NotFound("no asset named")
    if not layout.is_valid_asset_id(asset_id):
        raise InvalidKey("invalid asset id")
    if not sep or not rel:
        raise NotFound("no such object")
    check_key(rel)
    return key, rel


@dataclass(frozen=True, slots=True)
class Decision:
    status: int  # 200, 206, 304, 412 or 416
    gzip: bool
    byte_range: ByteRange | None = None


def decide(request: web.BaseRequest, rep: Representation) -> Decision:
    """Status, content coding and range for a request, from headers alone (no I/O)."""
    headers = request.headers
    range_header = headers.get(h.RANGE) if request.method == "GET" else None
    # A Range request gets identity bytes: ranges of a gzip stream are useless to
    # players, and the ETag of each variant must stay distinct (RFC 9110 §8.8.3).
    gz = (rep.compressible and range_header is None
          and accepts_gzip(headers.get(h.ACCEPT_ENCODING)))
    etag = rep.etag(gz)
    if (h.IF_MATCH in headers or h.IF_NONE_MATCH in headers or h.IF_MODIFIED_SINCE in headers
            or h.IF_UNMODIFIED_SINCE in headers):
        outcome = evaluate(
            request.method, etag, rep.last_modified,
            if_match=headers.get(h.IF_MATCH),
            if_unmodified_since=headers.get(h.IF_UNMODIFIED_SINCE),
            if_none_match=headers.get(h.IF_NONE_MATCH),
            if_modified_since=headers.get(h.IF_MODIFIED_SINCE),
        )
        if outcome is Outcome.NOT_MODIFIED:
            return Decision(304, gz)
        if outcome is Outcome.PRECONDITION_FAILED:
            return Decision(412, gz)
    if range_header is None:
        return Decision(200, gz)
    # RFC 9110 §13.1.5: if the If-Range validator does not match, ignore Range.
    if not if_range_allows(headers.get(h.IF_RANGE), etag, rep.last_modified):
        return Decision(200, gz)
    try:
        byte_range = parse_range(range_header, rep.size)
    except RangeNotSatisfiable:
        return Decision(416, gz)
    if byte_range is None:
        return Decision(200, gz)
    return Decision(206, gz, byte_range)


class MediaHandler:
    """The /assets handler with its object cache; one per application."""

    def __init__(self, cfg: Config, store: Store, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self.policy = CachePolicy(cfg.origin.manifest_max_age, cfg.origin.error_max_age)
        self.cors = CorsPolicy(cfg.origin.cors_origins)
        self.cache: ObjectCache[Representation] = ObjectCache(cfg.origin.cache_bytes,
                                                              cfg.origin.cache_object_max)
        self.stats: LruDict[Representation] = LruDict(STAT_CACHE_ENTRIES)
        self.flight: SingleFlight[Representation] = SingleFlight()
        # asset id -> (trusted until, private, live): what its record said when last read
        self.alive: LruDict[tuple[float, bool, bool]] = LruDict(STAT_CACHE_ENTRIES)
        self.guard = AccessGuard(cfg)
        self._checks: SingleFlight[None] = SingleFlight()
        self.entry_ttl = self.policy.entry_ttl()
        # The stores time out on their own (storage.timeout); this is the backstop.
        self.timeout = cfg.storage.timeout + 2.0
        metrics.cache_bytes.set_function(lambda: self.cache.size)
        # Live streams this process produces (origin.live sets these when it is set up).
        self.live: Any = None
        self.live_serving: Any = None
        # Live streams other workers or replicas produce: forwarded to their owner.
        self.live_remote: Any = None
        # Told of every record this worker reads (origin.observe.hits: the analytics build
        # what they need of an asset from it, with no read of their own).
        self.on_record: Callable[[str, dict[str, Any]], None] | None = None

    # --- entry point ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        # Hot path: a key is only ever cached after it passed parse_media_path.
        key = raw_path[len(PREFIX):]
        rep = self.cache.get(key)
        if rep is not None:
            state = self.state(asset_id := key.partition("/")[0])
            if state is None:
                await self.confirm(asset_id)
                rep = self.cache.get(key)  # gone if the asset was found deleted
                state = self.alive.get(asset_id)
            if state is not None and state[1]:
                rep = None  # private: the token is checked below
        if rep is not None:
            request[CACHE_RESULT] = "hit"
            self.metrics.cache_hits.inc()
            return self._from_memory(request, rep)
        asset_id, token, rel = split_media_path(raw_path)
        key = layout.key(asset_id, rel)
        await self.confirm(asset_id)
        if self.is_private(asset_id) and request.get(GRANT) is None:
            admitted = self.guard.admit(request, asset_id, token)
            if isinstance(admitted, web.Response):
                return admitted
            request[GRANT] = admitted
        if self.live is not None:
            stream = self.live.get(asset_id)
            if stream is not None:
                answer: web.StreamResponse | None = await self.live_serving.answer(
                    request, stream, rel)
                if answer is not None:
                    return answer
            elif self.live_remote is not None and self.is_live(asset_id):
                # Another process's stream (its record says live): the directory is
                # asked only then, so a VOD miss costs no lookup of a live marker.
                answer = await self.live_remote.answer(request, asset_id)
                if answer is not None:
                    return answer
                try:
                    return await self._stored(request, key, rel)
                except NotFound:
                    # Not in the store: an object a live stream's owner has not written
                    # yet must not be a 404 (an edge would keep it): forwarded, or a 503.
                    if self.live.get(asset_id) is None:
                        answer = await self.live_remote.unowned(request, asset_id)
                        if answer is not None:
                            return answer
                    raise
        return await self._stored(request, key, rel)

    async def _stored(self, request: web.Request, key: str, rel: str) -> web.StreamResponse:
        """The object from memory or the store (any asset not answered as live)."""
        ocls = classify(rel)
        if ocls is ObjectClass.NOT_SERVED:
            raise NotFound("no such object")
        rep = self.cache.get(key)
        if rep is not None:
            request[CACHE_RESULT] = "hit"
            self.metrics.cache_hits.inc()
            return self._from_memory(request, rep)
        request[CACHE_RESULT] = "miss"
        self.metrics.cache_misses.inc()
        rep = self.stats.get(key) if ocls is ObjectClass.IMMUTABLE else None
        if rep is None:
            rep = await self.flight.run(key, lambda: self._load(key, rel, ocls))
        if rep.body is not None:
            return self._from_memory(request, rep)
        return await self._from_store(request, rep)

    # --- is the asset still there? ---------------------------------------------------------

    def trusted(self, asset_id: str) -> bool:
        """True while the asset's record was seen in the store within ALIVE_FOR; when that
        has lapsed for an asset seen before, a look in the background is started and the
        answer is still True (stale-while-revalidate: a request never waits for it)."""
        return self.state(asset_id) is not None

    def state(self, asset_id: str) -> tuple[float, bool, bool] | None:
        """(trusted until, private, live) as `trusted` sees it, or None for an asset this
        worker has not looked up."""
        state = self.alive.get(asset_id)
        if state is not None and state[0] <= time.monotonic() and asset_id not in self._checks:
            task = asyncio.ensure_future(self._checks.run(asset_id, lambda: self._look(asset_id)))
            task.add_done_callback(_consume)
        return state

    def is_private(self, asset_id: str) -> bool:
        """What the asset's record said when last read (False for one never read)."""
        state = self.alive.get(asset_id)
        return state is not None and state[1]

    def is_live(self, asset_id: str) -> bool:
        """Whether the asset's record said "live" when last read (within ALIVE_FOR)."""
        state = self.alive.get(asset_id)
        return state is not None and state[2]

    def note_access(self, asset_id: str, private: bool) -> None:
        """This worker changed the asset's access: it holds at once here (other workers
        read it from the record within ALIVE_FOR)."""
        state = self.alive.get(asset_id)
        live = state is not None and state[2]
        self.alive.put(asset_id, (time.monotonic() + ALIVE_FOR, private, live))

    async def confirm(self, asset_id: str) -> None:
        """For an asset not seen before: raise NotFound (and forget what is cached of it)
        when its record is not in the store (it is written last when packaging and deleted
        first by DELETE). One look at a time per asset. When the store does not answer,
        what memory holds keeps being served."""
        if not self.trusted(asset_id):
            await self._checks.run(asset_id, lambda: self._look(asset_id))

    async def _look(self, asset_id: str) -> None:
        previous = self.alive.get(asset_id)
        try:
            with self.metrics.time_store("get"):
                async with asyncio.timeout(self.timeout):
                    rec = await read_record(self.store, asset_id)
        except (StoreUnavailable, TimeoutError) as e:
            if previous is None:
                # Whether it exists and who may see it are both unknown: 503, not a guess.
                raise StoreUnavailable(f"cannot read the record of {asset_id!r}: {e}") from e
            log.warning("asset %s: cannot check its record (%s); serving what memory holds",
                        asset_id, e)
            self.alive.put(asset_id, (time.monotonic() + ALIVE_FOR, previous[1], previous[2]))
            return
        if rec is None:
            self.forget(asset_id)
            raise NotFound("no such asset")
        self.alive.put(asset_id, (time.monotonic() + ALIVE_FOR, is_private_record(rec),
                                  rec.get("state") == "live"))
        if self.on_record is not None:
            self.on_record(asset_id, rec)

    def forget(self, asset_id: str) -> None:
        """Drop everything this worker holds of `asset_id`."""
        prefix = f"{asset_id}/"
        self.cache.discard_prefix(prefix)
        self.stats.discard_prefix(prefix)
        self.alive.discard(asset_id)

    # --- loading --------------------------------------------------------------------------

    async def _load(self, key: str, rel: str, ocls: ObjectClass) -> Representation:
        """Stat the object and, when it fits the cache, fetch and keep it (single-flight)."""
        ttl = None if ocls is ObjectClass.IMMUTABLE else self.entry_ttl
        for _attempt in range(_LOAD_ATTEMPTS):
            with self.metrics.time_store("stat"):
                async with asyncio.timeout(self.timeout):
                    info = await self.store.stat(key)
            rep = Representation.build(key, rel, info, ocls, self.policy.for_object(ocls),
                                       self.cors)
            if not self.cache.admits(info.size) or ttl == 0:
                if ocls is ObjectClass.IMMUTABLE:
                    self.stats.put(key, rep)
                return rep
            with self.metrics.time_store("get"):
                async with asyncio.timeout(self.timeout):
                    body = await self.store.get(key)
            if len(body) == info.size:
                rep.body = body
                self.cache.put(key, rep, info.size, ttl)
                return rep
            # The object was replaced between stat and get (an entry manifest being
            # re-published): stat again so validators and bytes agree.
        raise StoreUnavailable(f"{key!r} keeps changing while being read")

    # --- answering from memory ------------------------------------------------------------

    def _from_memory(self, request: web.Request, rep: Representation) -> web.StreamResponse:
        d = decide(request, rep)
        body = rep.body
        assert body is not None
        if d.status == 200:
            if d.gzip:
                resp = web.Response(body=rep.gzipped(), headers=rep.gz_headers)
            else:
                resp = web.Response(body=body, headers=rep.headers)
        elif d.status == 206:
            r = d.byte_range
            assert r is not None
            resp = web.Response(status=206, body=body[r.start:r.end], headers=rep.headers)
            resp.headers[h.CONTENT_RANGE] = r.content_range
        else:
            return self._bodiless(request, rep, d)
        if not self.cors.any_origin:
            self.cors.dynamic(request, resp.headers)
        return resp

    def _bodiless(self, request: web.Request, rep: Representation,
                  d: Decision) -> web.Response:
        """304, 412 and 416: decided without touching the bytes."""
        variant = rep.gz_headers if d.gzip and rep.gz_headers is not None else rep.headers
        if d.status == 304:
            # RFC 9110 §15.4.5: the fields a 200 would carry for caches (ETag,
            # Cache-Control, Vary, Last-Modified), not the content metadata.
            resp = web.Response(status=304, headers={
                k: v for k, v in variant.items() if k not in _NOT_MODIFIED_DROP})
        elif d.status == 416:
            # RFC 9110 §15.5.17: "bytes */" followed by the current length.
            resp = json_error(416, headers={h.CONTENT_RANGE: f"bytes */{rep.size}",
                                            h.ACCEPT_RANGES: h.BYTES})
            resp.headers[h.CACHE_CONTROL] = self.policy.for_error(416)
        else:
            resp = json_error(412)
            resp.headers[h.CACHE_CONTROL] = self.policy.for_error(412)
        self.cors.apply(request, resp)
        return resp

    # --- answering from the store ---------------------------------------------------------

    async def _from_store(self, request: web.Request,
                          rep: Representation) -> web.StreamResponse:
        d = decide(request, rep)
        if d.status not in (200, 206):
            return self._bodiless(request, rep, d)
        if d.gzip:
            # Playlists too large for the cache but small enough to compress (GZIP_MAX).
            with self.metrics.time_store("get"):
                async with asyncio.timeout(self.timeout):
                    data = await self.store.get(rep.key)
            gz_resp = web.Response(body=compress(data), headers=rep.gz_headers)
            self.cors.dynamic(request, gz_resp.headers)
            return gz_resp
        r = d.byte_range or ByteRange(0, rep.size, rep.size)
        resp = web.StreamResponse(status=d.status, headers=rep.headers)
        if d.status == 206:
            resp.headers[h.CONTENT_RANGE] = r.content_range
        resp.content_length = r.length
        self.cors.dynamic(request, resp.headers)
        if request.method == "HEAD" or r.length == 0:
            await resp.prepare(request)
            await resp.write_eof()
            return resp
        if r.length >= SENDFILE_MIN:
            fobj = await self._open_local(rep)
            if fobj is not None:
                try:
                    await self._sendfile(request, resp, fobj, r)
                finally:
                    fobj.close()
                return resp
        await self._stream(request, resp, rep, r)
        return resp

    async def _open_local(self, rep: Representation) -> IO[bytes] | None:
        """The open file behind a local store's key, checked to be the one we stat'ed."""
        try:
            fobj = await asyncio.to_thread(_open_local, self.store, rep.key)
        except FileNotFoundError:
            self.stats.discard(rep.key)
            raise NotFound("no such object") from None
        if fobj is not None and os.fstat(fobj.fileno()).st_size != rep.size:
            fobj.close()
            self.stats.discard(rep.key)
            raise StoreUnavailable("object changed while being read")
        return fobj

    async def _sendfile(self, request: web.Request, resp: web.StreamResponse,
                        fobj: IO[bytes], r: ByteRange) -> None:
        await resp.prepare(request)
        request[STREAMING] = True
        request[PREPARED] = resp
        request[BYTES_SENT] = 0
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("connection lost")
        loop = asyncio.get_running_loop()
        try:
            # In slices, so that a listener who leaves mid-file is known to have had the
            # slices before (analytics count what was delivered); a slice is one syscall.
            pos = r.start
            while pos < r.end:
                count = min(SENDFILE_SLICE, r.end - pos)
                await loop.sendfile(transport, fobj, pos, count)
                pos += count
                request[BYTES_SENT] = pos - r.start
        except NotImplementedError:  # uvloop, TLS: copy through the writer instead
            await _copy_file(request, resp, fobj, r)
        request[BYTES_SENT] = r.length
        await resp.write_eof()

    async def _stream(self, request: web.Request, resp: web.StreamResponse,
                      rep: Representation, r: ByteRange) -> None:
        chunks = self.store.read(rep.key, r.start, r.end).__aiter__()
        try:
            await self._send_chunks(request, resp, rep, r, chunks)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_chunks(self, request: web.Request, resp: web.StreamResponse,
                           rep: Representation, r: ByteRange,
                           chunks: AsyncIterator[bytes]) -> None:
        await send_chunks(request, resp, chunks, r.length, wait=self.timeout,
                          what=repr(rep.key), first_read=self.metrics.time_store("read"))

    def preflight(self, request: web.Request) -> web.Response:
        return self.cors.preflight(request)


def is_private_record(rec: dict[str, Any]) -> bool:
    """Only "public" is public: a record with any other access value is kept private."""
    return bool(rec.get("access", "public") != "public")


def _consume(task: asyncio.Future[None]) -> None:
    """A background look's outcome is in the cache state; its NotFound is not an error."""
    if not task.cancelled():
        task.exception()


async def send_chunks(request: web.Request, resp: web.StreamResponse,
                      chunks: AsyncIterator[bytes], length: int, *, wait: float, what: str,
                      first_read: AbstractContextManager[Any] | None = None) -> None:
    """Stream `chunks` (`length` bytes in all) as the body of the unprepared `resp`.

    The first chunk is awaited (within `wait` seconds, inside `first_read`: a store timing)
    before the status line goes out, so a store that fails now still gets a clean
    503/404 instead of a cut 200. From then on request[BYTES_SENT] follows what was
    sent, and request[PREPARED] is the response (an aborted one counts what it sent).
    A body that comes out shorter or longer than Content-Length, already on the wire,
    drops the connection: the client sees an incomplete response, not a wrong one."""
    with first_read or contextlib.nullcontext():
        async with asyncio.timeout(wait):
            try:
                first = await chunks.__anext__()
            except StopAsyncIteration:
                first = b""
    await resp.prepare(request)
    request[STREAMING] = True
    request[PREPARED] = resp
    sent = request[BYTES_SENT] = 0
    if first:
        await resp.write(first)
        sent = request[BYTES_SENT] = len(first)
    async for chunk in chunks:
        await resp.write(chunk)
        sent += len(chunk)
        request[BYTES_SENT] = sent
    if sent != length:
        raise ConnectionResetError(f"{what}: sent {sent} of {length} bytes")
    await resp.write_eof()


def _open_local(store: Store, key: str) -> IO[bytes] | None:
    """In a worker thread: the file behind `key` when the store is a directory."""
    path = store.local_path(key)
    if path is None:
        return None
    return open(path, "rb")  # noqa: SIM115 - closed by the caller after sendfile


async def _copy_file(request: web.Request, resp: web.StreamResponse, fobj: IO[bytes],
                     r: ByteRange) -> None:
    pos, end = r.start, r.end
    while pos < end:
        chunk = await asyncio.to_thread(os.pread, fobj.fileno(), min(256 * 1024, end - pos), pos)
        if not chunk:
            raise ConnectionResetError("file truncated while being sent")
        await resp.write(chunk)
        pos += len(chunk)
        request[BYTES_SENT] = pos - r.start
