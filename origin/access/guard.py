"""The check every request for a private asset passes: a genuine, unexpired token that
covers the asset, from an address allowed to use it.

One guard per worker. Tokens that verified are remembered (with the client address
they verified from), so a listener's hundreds of segment requests cost one HMAC; expiry
and scope are still checked on every request. Failed checks are counted per client
address; past `[security] token_failures_per_minute` the address gets 429 for the rest
of the minute (guessing tokens is hopeless anyway, this keeps it from costing CPU).

Denials are 403 JSON with `Cache-Control: no-store` and say "expired" or "invalid",
never which part of the token failed (signing.tokens).
"""

from __future__ import annotations

import time

from aiohttp import hdrs, web

from origin.access.client_ip import client_address, networks
from origin.errors import json_error
from origin.http import headers as h
from origin.http.object_cache import LruDict
from settings import Config
from signing.tokens import Grant, TokenError, TokenExpired, TokenInvalid, check

VERIFIED_ENTRIES = 65536
TRACKED_ADDRESSES = 65536
WINDOW = 60.0
EXPIRED = "expired token: ask the application for a new playback URL"
INVALID = "invalid token: this asset is private and needs a signed playback URL"


class AccessGuard:
    def __init__(self, cfg: Config) -> None:
        self.keys = dict(cfg.security.signing_keys)
        self.trusted = networks(cfg.origin.trusted_proxies)
        self.limit = cfg.security.token_failures_per_minute
        self._verified: LruDict[Grant] = LruDict(VERIFIED_ENTRIES)
        self._failures: LruDict[list[float]] = LruDict(TRACKED_ADDRESSES)  # [window start, n]

    def client(self, request: web.BaseRequest) -> str | None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        host = peer[0] if isinstance(peer, tuple) and peer else None
        return client_address(host, request.headers.get(hdrs.X_FORWARDED_FOR), self.trusted)

    def grant(self, token: str | None, asset_id: str, client: str | None,
              now: float | None = None) -> Grant:
        """The grant of `token` for `asset_id` from `client`; raises TokenError."""
        if not token:
            raise TokenInvalid("no token")
        now = time.time() if now is None else now
        cache_key = f"{token}\n{client or ''}"
        grant = self._verified.get(cache_key)
        if grant is None:
            grant = check(token, self.keys, asset_id, now=now, client_ip=client)
            self._verified.put(cache_key, grant)
            return grant
        if now >= grant.expires:
            raise TokenExpired("expired")
        if not grant.covers(asset_id):
            raise TokenInvalid("not for this asset")
        return grant

    def admit(self, request: web.BaseRequest, asset_id: str,
              token: str | None) -> Grant | web.Response:
        """The grant, or the response that refuses the request (403, or 429 for an
        address that failed too often)."""
        client = self.client(request)
        now = time.time()
        # A token that already verified from this address is not throttled (a listener
        # behind the same NAT as someone guessing keeps playing).
        if not token or self._verified.get(f"{token}\n{client or ''}") is None:
            refused = self._throttled(client, now)
            if refused is not None:
                return refused
        try:
            return self.grant(token, asset_id, client, now)
        except TokenError as e:
            self._count_failure(client, now)
            return denial(EXPIRED if isinstance(e, TokenExpired) else INVALID)

    def _throttled(self, client: str | None, now: float) -> web.Response | None:
        if not self.limit or client is None:
            return None
        seen = self._failures.get(client)
        if seen is None or now - seen[0] >= WINDOW or seen[1] < self.limit:
            return None
        resp = json_error(429, "too many failed token checks from this address")
        resp.headers[h.RETRY_AFTER] = str(max(1, int(seen[0] + WINDOW - now + 0.999)))
        resp.headers[h.CACHE_CONTROL] = h.NO_STORE
        return resp

    def _count_failure(self, client: str | None, now: float) -> None:
        if not self.limit or client is None:
            return
        seen = self._failures.get(client)
        if seen is None or now - seen[0] >= WINDOW:
            self._failures.put(client, [now, 1.0])
        else:
            seen[1] += 1


def denial(message: str) -> web.Response:
    resp = json_error(403, message)
    resp.headers[h.CACHE_CONTROL] = h.NO_STORE
    return resp


def capped_seconds(remaining: float) -> int:
    """The max-age a response to a token with `remaining` seconds carries: the whole
    seconds left, rounded down to a minute when more than ten are left (so that the
    responses to many users' tokens share a few header blocks; never past expiry)."""
    whole = int(remaining)
    return whole - whole % 60 if whole > 600 else max(0, whole)


def cap_max_age(cache_control: str, seconds: float) -> str:
    """`cache_control` with its max-age (and s-maxage) no longer than `seconds`: a
    response to a signed URL is not kept by any cache past the token's expiry."""
    limit = max(0, int(seconds))
    if limit == 0:
        return h.NO_STORE
    out = []
    for item in cache_control.split(","):
        name, eq, value = item.strip().partition("=")
        if eq and name.lower() in ("max-age", "s-maxage") and value.isdigit():
            item = f"{name}={min(int(value), limit)}"
        out.append(item.strip())
    return ", ".join(out)
