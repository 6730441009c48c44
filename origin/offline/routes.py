"""`GET/HEAD /v1/offline?assets=ID,ID,...[&rendition=R][&token=T...]`: one ZIP of several
assets for offline use (CONTRACT §4; layout in origin.offline.contents, bytes in
origin.offline.plan).

Everything is decided before the status line: ids, records, access, readiness, the
plan (so its Content-Length and ETag), then preconditions and Range exactly as for a
media object (origin.media.decide over a Representation of the plan), so 200, 206, 304,
412 and 416 mean what they mean for `/v1/assets/{id}/download`. Then the bytes are read
from the store as they are sent.

Private assets: each must be covered by a token the download endpoint would take
(`?token=`; several may be given, and a prefix token covers every asset it names), or
the request carries a write key (`Authorization: Bearer KEY`, with keys configured).
Otherwise 403 before any byte, with the guard's own words (expired or invalid token,
never which part failed), and the guard's throttling of failed checks.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aiohttp import hdrs, web

from manifests import layout
from origin.app import HITS_KEY, MEDIA_KEY
from origin.auth import bad_key_on_read, bearer_token, key_matches
from origin.errors import json_error, register_error
from origin.http import headers as h
from origin.http.cache_policy import ObjectClass
from origin.http.ranges import ByteRange
from origin.http.representation import Representation
from origin.keys import BYTES_SENT, CONFIG_KEY, STORE_KEY
from origin.media import MediaHandler, decide, is_private_record, send_chunks
from origin.offline import sources
from origin.offline.checksums import Checksums
from origin.offline.plan import Plan, Span
from origin.offline.stream import ShortRead, read_range
from signing.tokens import TokenError
from storage.base import ObjectInfo
from storage.content_types import attachment_disposition

log = logging.getLogger("sori.offline")

CHECKSUMS_KEY = web.AppKey("sori.offline.checksums", Checksums)
CONTENT_TYPE = "application/zip"
_NOT_MODIFIED_DROP = (h.CONTENT_TYPE, h.ACCEPT_RANGES, "Content-Disposition")

# An object cut or removed underneath a bundle before its first byte went out.
register_error(ShortRead, 503)


def register(app: web.Application) -> None:
    app[CHECKSUMS_KEY] = Checksums(app[STORE_KEY])
    app.router.add_get("/v1/offline", offline, name="offline")  # and HEAD
    # A page on another origin may fetch a bundle with Range (to resume): its preflight.
    app.router.add_route("OPTIONS", "/v1/offline", preflight)


async def preflight(request: web.Request) -> web.Response:
    return request.app[MEDIA_KEY].preflight(request)


async def offline(request: web.Request) -> web.StreamResponse:
    refused = bad_key_on_read(request)
    if refused is not None:
        return refused
    cfg = request.app[CONFIG_KEY]
    store = request.app[STORE_KEY]
    try:
        ids = sources.parse_ids(request.query.getall("assets", []),
                                cfg.origin.offline_max_assets)
        rendition = sources.parse_rendition(request.query.get("rendition"))
        records = await sources.read_records(store, ids)
        denied = _admit(request, records)
        if denied is not None:
            return denied
        sources.refuse_unready(records)
        sources.check_rendition(records, rendition)
        found = await sources.entries(records, request.app[CHECKSUMS_KEY],
                                      public_url=cfg.origin.public_url, rendition=rendition)
    except sources.Refused as e:
        return json_error(e.status, str(e), headers={h.CACHE_CONTROL: h.NO_STORE})
    plan = sources.layout_bundle(found, rendition)
    private = any(is_private_record(r) for r in records)
    downloads = {layout.key(r["id"], r["download_key"]): r["id"] for r in records
                 if isinstance(r.get("download_key"), str)}
    return await _answer(request, plan, _representation(request, plan, records, private),
                         _filename(ids, rendition), downloads)


def _count_downloads(request: web.Request, plan: Plan, start: int, sent: int,
                     downloads: dict[str, str]) -> None:
    """The progressive files' bytes this response carried, as downloads for analytics
    (origin.observe.hits): a bundle is how a listener downloads episodes for offline use."""
    hits = request.app.get(HITS_KEY)
    if hits is None or sent <= 0:
        return
    for piece, lo, hi in plan.slices(start, start + sent):
        if isinstance(piece, Span) and piece.key in downloads:
            hits.delivered(request, downloads[piece.key], piece.offset + lo, hi - lo,
                           piece.offset + piece.length)


def _admit(request: web.Request, records: list[dict[str, Any]]) -> web.Response | None:
    """None when every private asset named is covered, else the refusal (403 or 429)."""
    private = [str(r["id"]) for r in records if is_private_record(r)]
    if not private or _holds_write_key(request):
        return None
    guard = request.app[MEDIA_KEY].guard
    tokens = [t for t in request.query.getall("token", []) if t]
    client = guard.client(request)
    for asset_id in private:
        covered = False
        for token in tokens:
            try:
                guard.grant(token, asset_id, client)
            except TokenError:
                continue
            covered = True
            break
        if not covered:
            # The guard says why (expired or invalid), counts the failure and throttles.
            admitted = guard.admit(request, asset_id, tokens[0] if tokens else None)
            if isinstance(admitted, web.Response):
                return admitted
    return None


def _holds_write_key(request: web.Request) -> bool:
    """A configured write key in the Authorization header (bad_key_on_read has already
    refused a wrong one). Unlike reading a record, no key configured grants nothing
    here: private media needs a token, as at the download endpoint."""
    keys = request.app[CONFIG_KEY].security.api_keys
    token = bearer_token(request.headers.get(hdrs.AUTHORIZATION))
    return bool(keys) and token is not None and key_matches(token, keys)


def _representation(request: web.Request, plan: Plan, records: list[dict[str, Any]],
                    private: bool) -> Representation:
    media: MediaHandler = request.app[MEDIA_KEY]
    newest = max(_seconds(r.get("updated") or r.get("created")) for r in records)
    info = ObjectInfo("offline.zip", plan.size, plan.etag, newest, CONTENT_TYPE)
    # Short max-age like an entry manifest: the same URL changes when an asset named in it
    # is re-packaged. A bundle with a private asset is kept by no cache.
    cache = h.NO_STORE if private else media.policy.entry
    return Representation.build("offline.zip", "offline.zip", info, ObjectClass.ENTRY, cache,
                                media.cors)


def _seconds(rfc3339: object) -> float:
    if isinstance(rfc3339, str):
        try:
            return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return 0.0


def _filename(ids: list[str], rendition: str | None) -> str:
    stem = ids[0] if len(ids) == 1 else f"{ids[0]}-and-{len(ids) - 1}-more"
    return f"{stem}{'.' + rendition if rendition else ''}.zip"


async def _answer(request: web.Request, plan: Plan, rep: Representation,
                  filename: str, downloads: dict[str, str]) -> web.StreamResponse:
    media: MediaHandler = request.app[MEDIA_KEY]
    d = decide(request, rep)
    if d.status == 304:
        resp = web.Response(status=304, headers={
            k: v for k, v in rep.headers.items() if k not in _NOT_MODIFIED_DROP})
        media.cors.dynamic(request, resp.headers)
        return resp
    if d.status == 416:
        resp = json_error(416, headers={h.CONTENT_RANGE: f"bytes */{plan.size}",
                                        h.ACCEPT_RANGES: h.BYTES, h.CACHE_CONTROL: h.NO_STORE})
        media.cors.apply(request, resp)
        return resp
    if d.status == 412:
        resp = json_error(412, headers={h.CACHE_CONTROL: h.NO_STORE})
        media.cors.apply(request, resp)
        return resp
    r = d.byte_range or ByteRange(0, plan.size, plan.size)
    out = web.StreamResponse(status=d.status, headers=rep.headers)
    out.headers["Content-Disposition"] = attachment_disposition(filename)
    if d.status == 206:
        out.headers[h.CONTENT_RANGE] = r.content_range
    out.content_length = r.length
    media.cors.dynamic(request, out.headers)
    if request.method == "HEAD" or r.length == 0:
        await out.prepare(request)
        await out.write_eof()
        return out
    store = request.app[STORE_KEY]
    chunks = read_range(store, plan, r.start, r.end)
    try:
        await send_chunks(request, out, chunks, r.length, wait=media.timeout,
                          what="offline bundle")
    finally:
        await chunks.aclose()
        _count_downloads(request, plan, r.start, request.get(BYTES_SENT, 0), downloads)
    return out
