"""Where a token travels in a playback URL.

A token is one path segment right after the asset id, marked by a leading '~':

    /assets/{id}/~{token}/master.m3u8
    /assets/{id}/~{token}/manifest.mpd
    /v1/assets/{id}/download?token={token}       (one file: nothing relative to resolve)

Every URI inside the manifests is relative, so a player resolving them against
`/assets/{id}/~{token}/` (RFC 3986 §5.2) carries the token to every media playlist,
init segment, segment, part, preload hint, rendition report, I-frame playlist, poster,
thumbnail and SegmentTemplate by itself: no player configuration, no per-user
rewriting of manifests, and the manifests stay byte-identical for every user (so the
origin's memory and an edge cache hold one copy). A query string would not do this:
resolving a relative reference drops the base's query (§5.2.2), which is why AVPlayer
would lose `?token=` after the first playlist.

The token characters (base64url and one '.') need no percent-encoding in a path or a
query. No object of an asset has a path starting with '~', so the marker is
unambiguous.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from manifests import layout
from signing.tokens import mint

MARK = "~"


def split_token(rest: str) -> tuple[str | None, str]:
    """(token, the object path) from what follows `{id}/` in a media path."""
    if rest.startswith(MARK):
        token, _, rel = rest[1:].partition("/")
        return token, rel
    return None, rest


def media_base(asset_id: str, token: str | None) -> str:
    """The root-relative directory a signed (or plain) asset's manifests resolve from."""
    if token is None:
        return f"/assets/{asset_id}/"
    return f"/assets/{asset_id}/{MARK}{token}/"


def playback_paths(asset_id: str, token: str | None) -> dict[str, str]:
    """The root-relative URLs of an asset's two manifests and its download."""
    base = media_base(asset_id, token)
    download = f"/v1/assets/{asset_id}/download"
    return {
        "hls": base + layout.MASTER,
        "dash": base + layout.MPD,
        "download": download if token is None else f"{download}?token={token}",
    }


def signed_media_url(url: str, asset_id: str, token: str) -> str:
    """A record's media URL (`/assets/{id}/...`, absolute or not) as its signed form."""
    plain = f"/assets/{asset_id}/"
    at = url.find(plain)
    if at < 0:
        return url
    return url[:at] + media_base(asset_id, token) + url[at + len(plain):]


def playback_urls(keys: Mapping[str, str], asset_id: str, *, ttl: int, now: float,
                  user: str | None = None, client_ip: str | None = None,
                  base_url: str = "") -> dict[str, Any]:
    """What `POST /v1/assets/{id}/playback-url` and `sori sign` give: the signed URLs
    of an asset (absolute under `base_url`, else root-relative), the token, and when it
    expires (RFC 3339 and Unix seconds). Raises ValueError (see tokens.mint)."""
    if ttl <= 0:
        raise ValueError("ttl: must be at least one second")
    expires = int(now) + int(ttl)
    token = mint(keys, expires=expires, asset=asset_id, user=user, client_ip=client_ip)
    base = base_url.rstrip("/")
    out: dict[str, Any] = {k: base + v for k, v in playback_paths(asset_id, token).items()}
    out["expires"] = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["expires_at"] = expires
    out["token"] = token
    return out


def redact(path: str) -> str:
    """`path` with the token of a signed URL replaced, for logs and metrics: a token is a
    bearer credential for as long as it lasts."""
    if f"/{MARK}" not in path:
        return path
    return "/".join(f"{MARK}redacted" if seg.startswith(MARK) else seg
                    for seg in path.split("/"))
