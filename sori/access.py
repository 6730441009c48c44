"""Minting playback URLs for private assets, in an application's own backend.

    from sori import access, config

    cfg = config.load("config.toml")
    urls = access.playback_urls(cfg, "talk-1", ttl=3600, user="u-42")
    # {"hls": ".../assets/talk-1/~TOKEN/master.m3u8", "dash": ..., "download": ...,
    #  "expires": "2026-12-02T14:00:00Z", "expires_at": 1796220000, "token": "TOKEN"}

No call to the origin: the token is an HMAC-SHA256 over what it grants with a key of
`[security] signing_keys` (the first one), which every origin with the same keys
verifies. The format is in signing/FORMAT.md for backends in other languages.

Lower level, without a Config: `mint(keys, expires=..., asset=... | prefix=...)`,
`verify(token, keys, now=...)`, `playback_paths(asset_id, token)`.
"""

from __future__ import annotations

import time
from typing import Any

from settings import Config
from signing.tokens import Grant, TokenError, TokenExpired, TokenInvalid, mint, verify
from signing.urls import playback_paths
from signing.urls import playback_urls as _playback_urls

__all__ = ["Grant", "TokenError", "TokenExpired", "TokenInvalid", "mint", "verify",
           "playback_paths", "playback_urls", "prefix_token"]


def playback_urls(cfg: Config, asset_id: str, *, ttl: int | None = None,
                  user: str | None = None, client_ip: str | None = None,
                  now: float | None = None) -> dict[str, Any]:
    """Signed URLs of one asset, absolute under `[origin] public_url` when it is set.
    Raises ValueError (no signing key, a bad id, a ttl out of range)."""
    ttl = cfg.security.playback_ttl if ttl is None else ttl
    if not 1 <= ttl <= cfg.security.max_playback_ttl:
        raise ValueError(f"ttl: from 1 to {cfg.security.max_playback_ttl} seconds "
                         "([security] max_playback_ttl)")
    return _playback_urls(cfg.security.signing_keys, asset_id, ttl=ttl,
                          now=time.time() if now is None else now, user=user,
                          client_ip=client_ip, base_url=cfg.origin.public_url)


def prefix_token(cfg: Config, prefix: str, *, ttl: int | None = None, user: str | None = None,
                 client_ip: str | None = None, now: float | None = None) -> str:
    """A token for every asset whose id starts with `prefix` (a series, a show): use it
    as `/assets/{id}/~{token}/master.m3u8` for any such id."""
    ttl = cfg.security.playback_ttl if ttl is None else ttl
    expires = int(time.time() if now is None else now) + ttl
    return mint(cfg.security.signing_keys, expires=expires, prefix=prefix, user=user,
                client_ip=client_ip)
