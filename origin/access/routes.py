"""The access endpoints and the one response hook (see origin/access/__init__.py).

    POST  /v1/assets/{id}/playback-url   (write key) {"ttl"?, "user"?, "ip"?} → signed URLs
    PATCH /v1/assets/{id}                (write key) {"access"?, "title"?} → ASSET
    GET   /v1/access/check               204/403 for the URI in X-Original-URI (an edge's
                                         auth_request; deploy/nginx)
    GET   /playback/{id}                 the player page's playback URLs: the record's own
                                         for a public asset, signed ones for a private
                                         asset when the request holds a write key. A
                                         deployment replaces it with its own (same JSON)

Every response to a request admitted by a token has its max-age capped at the token's
remaining lifetime, so no browser or CDN that keys on the full URL keeps it past expiry.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from aiohttp import web

from manifests import layout
from origin.access.guard import INVALID, cap_max_age, capped_seconds, denial
from origin.api import JOBS_KEY, _asset_id, _public, _record, _refuse_if_busy, json_response
from origin.app import MEDIA_KEY
from origin.auth import bad_key_on_read, holds_write_key
from origin.errors import json_error
from origin.http import headers as h
from origin.keys import CONFIG_KEY, GRANT, LIVE_KEY, STORE_KEY
from origin.media import PREFIX, is_private_record, split_media_path
from packager.errors import InvalidInput
from packager.publish import update_record
from packager.record import PATCHABLE, with_public_url
from signing.urls import playback_urls, signed_media_url
from storage.errors import InvalidKey, NotFound

MAX_BODY = 16 * 1024
CHECK_PUBLIC_MAX_AGE = 5  # an edge re-asks this often whether a public asset went private
CHECK_GRANT_MAX_AGE = 60  # ... and whether a token still holds (never past its expiry)
PATCH_FIELDS = frozenset(PATCHABLE)
MAX_TITLE = 500
# Objects of the version a page fetches itself, besides the manifests (signed alike).
SIDE_OBJECTS = ("poster", "thumbnails", "transcript", "transcript_text", "chapters")
PAGE_FIELDS = ("hls", "dash", "download", *SIDE_OBJECTS)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/assets/{id}/playback-url", playback_url, name="access-playback-url")
    r.add_patch("/v1/assets/{id}", patch_asset, name="access-patch")
    r.add_get("/v1/access/check", edge_check, name="access-check")
    r.add_get("/playback/{id}", page_playback, name="access-page-playback")
    app.on_response_prepare.append(_cap_cache_control)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise InvalidInput("the request body is too large")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise InvalidInput("the request body is too large")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def _signed(request: web.Request, asset_id: str, body: dict[str, Any],
            rec: dict[str, Any]) -> dict[str, Any]:
    cfg = request.app[CONFIG_KEY]
    sec = cfg.security
    unknown = set(body) - {"ttl", "user", "ip"}
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    ttl = body.get("ttl", sec.playback_ttl)
    if type(ttl) is not int or not 1 <= ttl <= sec.max_playback_ttl:
        raise InvalidInput(f"ttl: an integer from 1 to {sec.max_playback_ttl} seconds")
    user, ip = body.get("user"), body.get("ip")
    if user is not None and not isinstance(user, str):
        raise InvalidInput("user: a string")
    if ip is not None and not isinstance(ip, str):
        raise InvalidInput("ip: the client's address as a string")
    if not sec.signing_keys:
        raise _NoKeys()
    try:
        urls = playback_urls(sec.signing_keys, asset_id, ttl=ttl, now=time.time(), user=user,
                             client_ip=ip, base_url=cfg.origin.public_url)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    public = with_public_url(rec, cfg.origin.public_url)
    for name in SIDE_OBJECTS:  # poster, transcript, ...: signed the same way
        if isinstance(public.get(name), str):
            urls[name] = signed_media_url(public[name], asset_id, urls["token"])
    return urls


class _NoKeys(Exception):
    pass


def _no_keys() -> web.Response:
    return json_error(409, "no signing key is configured: add one to [security] "
                           "signing_keys (for example: openssl rand -base64 32)")


async def playback_url(request: web.Request) -> web.Response:
    asset_id = _asset_id(request)
    body = await _json_body(request)
    rec = await _record(request, asset_id)  # 404 for an unknown asset
    try:
        return json_response(_signed(request, asset_id, body, rec))
    except _NoKeys:
        return _no_keys()


async def page_playback(request: web.Request) -> web.Response:
    refused = bad_key_on_read(request)
    if refused is not None:
        return refused
    asset_id = _asset_id(request)
    rec = await _record(request, asset_id)
    private = is_private_record(rec)
    if private and not holds_write_key(request):
        raise NotFound(f"no asset {asset_id!r} (or it is private: this page needs a key)")
    if not private:
        public = with_public_url(rec, request.app[CONFIG_KEY].origin.public_url)
        return json_response({k: public[k] for k in PAGE_FIELDS if k in public})
    try:
        return json_response(_signed(request, asset_id, {}, rec))
    except _NoKeys:
        return _no_keys()


async def patch_asset(request: web.Request) -> web.Response:
    asset_id = _asset_id(request)
    body = await _json_body(request)
    unknown = set(body) - PATCH_FIELDS
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}; "
                           "PATCH changes access and title")
    access, title = body.get("access"), body.get("title")
    if access is not None and access not in ("public", "private"):
        raise InvalidInput("access: \"public\" or \"private\"")
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE):
        raise InvalidInput(f"title: a string of at most {MAX_TITLE} characters")
    _refuse_if_busy(request.app[JOBS_KEY], asset_id)

    def change(rec: dict[str, Any] | None) -> dict[str, Any]:
        if rec is None:
            raise NotFound(f"no asset {asset_id!r}")
        if access is not None:
            rec["access"] = access
        if title is not None:
            rec["title"] = title
        return rec

    # Conditional: a write by another worker, replica or a live stream's owner between
    # this read and this write makes it read and change again, so neither is lost.
    rec = await update_record(request.app[STORE_KEY], asset_id, change)
    assert rec is not None
    live = request.app.get(LIVE_KEY)
    if live is not None and live.get(asset_id) is not None:
        # A stream this process owns keeps its record in memory, which the owner's later
        # writes (its start, the seal) start from: change that copy too.
        change(live.records[asset_id])
    request.app[MEDIA_KEY].note_access(asset_id, is_private_record(rec))
    return json_response(_public(request, rec))


async def edge_check(request: web.Request) -> web.Response:
    """For an edge's auth_request: may the client fetch the URI in X-Original-URI?"""
    uri = request.headers.get("X-Original-URI", "")
    path, _, query = uri.partition("?")
    if not path.startswith((PREFIX, "/v1/assets/")):
        return _check_answer(204, CHECK_PUBLIC_MAX_AGE)  # not an asset's: the origin answers it
    try:
        asset_id, token = _target(path, query)
    except (InvalidKey, NotFound):
        # Under an asset's prefix but not a path the origin would serve as written (dot
        # segments, encoded separators): an edge that normalises paths could map it onto
        # a cached object, so it is refused here rather than waved through.
        return denial(INVALID)
    media = request.app[MEDIA_KEY]
    try:
        await media.confirm(asset_id)
    except NotFound:
        return _check_answer(204, CHECK_PUBLIC_MAX_AGE)  # the proxied request gets the 404
    if not media.is_private(asset_id):
        return _check_answer(204, CHECK_PUBLIC_MAX_AGE)
    admitted = media.guard.admit(request, asset_id, token)
    if isinstance(admitted, web.Response):
        if admitted.status != 403:
            # auth_request knows 2xx, 401 and 403 only (anything else becomes a 500 at
            # the edge): a throttled address is refused like any other denial.
            return denial(INVALID)
        return admitted
    remaining = admitted.expires - time.time()
    return _check_answer(204, min(CHECK_GRANT_MAX_AGE, remaining))


def _target(path: str, query: str) -> tuple[str, str | None]:
    """(asset id, token) of a media or download URI."""
    if path.startswith(PREFIX):
        asset_id, token, _rel = split_media_path(path)
        return asset_id, token
    parts = path.split("/")
    if len(parts) == 5 and parts[:3] == ["", "v1", "assets"] and parts[4] == "download":
        if not layout.is_valid_asset_id(parts[3]):
            raise InvalidKey("invalid asset id")
        token = next((v for k, _, v in (p.partition("=") for p in query.split("&"))
                      if k == "token"), None)
        return parts[3], token
    raise NotFound("not an asset's URI")


def _check_answer(status: int, max_age: float) -> web.Response:
    # A whole second less than what is left: a cache counting whole seconds never keeps
    # the answer past the token's expiry.
    seconds = math.ceil(max_age) - 1
    # Neither public nor private: only the edge keeps it (nginx stores no `private`).
    cc = f"max-age={seconds}" if seconds > 0 else h.NO_STORE
    return web.Response(status=status, headers={h.CACHE_CONTROL: cc})


async def _cap_cache_control(request: web.Request, resp: web.StreamResponse) -> None:
    grant = request.get(GRANT)
    if grant is None:
        return
    cc = resp.headers.get(h.CACHE_CONTROL)
    if cc is not None:
        resp.headers[h.CACHE_CONTROL] = cap_max_age(
            cc, capped_seconds(grant.expires - time.time()))
