"""API keys for the write endpoints (CONTRACT §4).

When `[security] api_keys` is non-empty, every request with a write method
(POST, PUT, PATCH, DELETE) on any route must carry `Authorization: Bearer KEY`
with one of the keys; reads (GET, HEAD, OPTIONS) stay open. The origin's `edge`
middleware calls `check` for every write request, rather than each handler, so write
endpoints added later (live ingest) are covered without remembering to call anything,
and reads (the hot path) pay nothing for it.

The comparison is constant-time (`hmac.compare_digest`) against every
configured key, so neither the position of a match nor a common prefix shows
in the timing. A missing, malformed or wrong header gets 401 with
`WWW-Authenticate: Bearer` (RFC 6750 §3); the error names which of the three
it was, never the key.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from origin.errors import json_error
from origin.keys import CONFIG_KEY

WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
REALM = 'Bearer realm="sori"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None when the header
    is absent or not of that form (RFC 6750 §2.1: one token68, no spaces)."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def key_matches(token: str, keys: tuple[str, ...]) -> bool:
    """Constant-time membership: every key is compared, whatever matches first."""
    given = token.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


def _unauthorized(message: str, error: str) -> web.Response:
    return json_error(401, message,
                      headers={hdrs.WWW_AUTHENTICATE: f'{REALM}, error="{error}"'})


def check(request: web.BaseRequest, keys: tuple[str, ...], *,
          write: bool | None = None) -> web.Response | None:
    """None when the request may proceed, else the 401 response. `write` forces the
    check for a request whose method is not a write one (a WebSocket upgrade is a GET
    that then writes)."""
    is_write = request.method in WRITE_METHODS if write is None else write
    if not keys or not is_write:
        return None
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return json_error(401, "this endpoint needs an API key: send "
                               "'Authorization: Bearer KEY'",
                          headers={hdrs.WWW_AUTHENTICATE: REALM})
    token = bearer_token(header)
    if token is None:
        return _unauthorized("malformed Authorization header: expected 'Bearer KEY'",
                             "invalid_request")
    if not key_matches(token, keys):
        return _unauthorized("invalid API key", "invalid_token")
    return None


def holds_write_key(request: web.Request) -> bool:
    """The request carries a valid write key, or no key is configured (reading private
    records and minting playback URLs ask for the same as writing)."""
    return check(request, request.app[CONFIG_KEY].security.api_keys, write=True) is None


def bad_key_on_read(request: web.Request) -> web.Response | None:
    """A read that carries an Authorization header which is not a valid key gets the
    401 a write would (so a client learns its key is wrong instead of silently seeing
    only public assets); a read without the header is not refused."""
    if hdrs.AUTHORIZATION not in request.headers:
        return None
    return check(request, request.app[CONFIG_KEY].security.api_keys, write=True)
