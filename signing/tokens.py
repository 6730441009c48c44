"""Playback tokens: minting and checking (the format is signing/FORMAT.md).

    token  = B64(claims) "." B64(mac)                  B64: base64url, no padding (RFC 4648 §5)
    claims = a JSON object: "v": 1, "kid": key id, "exp": Unix seconds,
             exactly one of "sub" (one asset id) or "pfx" (every asset whose id starts
             with it), optionally "uid" (the user, for the app's own records) and
             "ip": true (bound to the client's address)
    mac    = HMAC-SHA256(secret of kid, B64(claims))                     not bound
           = HMAC-SHA256(secret of kid, B64(claims) "\\n" client network)  bound

The MAC is computed over the claims exactly as they travel, so no JSON canonical form
is needed to mint one in another language. The client's address is not in the token
(a URL does not carry it around); a bound token's MAC simply does not verify from
another network: an IPv4 address exactly, an IPv6 address by its /64 (a phone's
privacy addresses change within it).

What a token grants is checked against an asset id that the origin has already
validated (`[A-Za-z0-9][A-Za-z0-9._-]{0,127}`: no '/', no '%'), never against a raw
path, so no `..`, `//` or percent-encoding can widen a prefix grant.

Checking order: shape, key id, MAC (constant time), then expiry, then scope. A token
whose MAC fails is "invalid" whatever else is wrong with it; "expired" is only said of
a token that was genuine. Neither says which field failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

VERSION = 1
MAX_TOKEN = 4096  # characters; far above any real token, bounds the work on garbage
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
ASSET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_USER = 256
MIN_SECRET = 16  # characters of a signing secret
_B64 = re.compile(r"[A-Za-z0-9_-]+")
_FIELDS = frozenset(("v", "kid", "exp", "sub", "pfx", "uid", "ip"))


class TokenError(Exception):
    """A token that grants nothing. `reason` is all a client is told."""

    reason = "invalid"


class TokenInvalid(TokenError):
    reason = "invalid"


class TokenExpired(TokenError):
    reason = "expired"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a genuine token grants."""

    kid: str
    expires: int
    asset: str | None = None  # exactly this asset ...
    prefix: str | None = None  # ... or every asset whose id starts with this
    user: str | None = None
    ip_bound: bool = False

    def covers(self, asset_id: str) -> bool:
        if self.asset is not None:
            return asset_id == self.asset
        return self.prefix is not None and asset_id.startswith(self.prefix)


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64url without padding; raises TokenInvalid."""
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        raise TokenInvalid("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("not base64url") from None
    if b64encode(data) != text:
        # The unused low bits of the last character set: another spelling of the same
        # bytes. One token has one spelling (it is a cache key at the edge).
        raise TokenInvalid("not canonical base64url")
    return data


def client_network(address: str) -> str:
    """The part of a client address a bound token is tied to: an IPv4 address as it is,
    an IPv6 address as its /64 ("2001:db8:1:2::/64"); an IPv4-mapped IPv6 address is the
    IPv4 one. Raises ValueError for something that is not an address."""
    ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _mac(secret: str, body: str, network: str | None) -> bytes:
    message = body if network is None else f"{body}\n{network}"
    return hmac.new(secret.encode(), message.encode("ascii"), hashlib.sha256).digest()


def mint(keys: Mapping[str, str], *, expires: int, asset: str | None = None,
         prefix: str | None = None, user: str | None = None, client_ip: str | None = None,
         kid: str | None = None) -> str:
    """A token granting `asset` (or every asset whose id starts with `prefix`) until the
    Unix time `expires`, signed with `kid` (default: the first key). Bound to
    `client_ip`'s network when given. Raises ValueError for arguments that could never
    verify."""
    if not keys:
        raise ValueError("no signing key configured ([security] signing_keys)")
    kid = next(iter(keys)) if kid is None else kid
    if kid not in keys:
        raise ValueError(f"unknown signing key id {kid!r}")
    if (asset is None) == (prefix is None):
        raise ValueError("a token grants either one asset or one prefix")
    if asset is not None and not ASSET_ID.fullmatch(asset):
        raise ValueError(f"invalid asset id {asset!r}")
    if prefix is not None and not PREFIX.fullmatch(prefix):
        raise ValueError(f"invalid asset id prefix {prefix!r}")
    if user is not None and not 0 < len(user) <= MAX_USER:
        raise ValueError(f"user: 1 to {MAX_USER} characters")
    claims: dict[str, object] = {"v": VERSION, "kid": kid, "exp": int(expires)}
    if asset is not None:
        claims["sub"] = asset
    else:
        claims["pfx"] = prefix
    if user is not None:
        claims["uid"] = user
    network = None
    if client_ip is not None:
        network = client_network(client_ip)
        claims["ip"] = True
    body = b64encode(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{b64encode(_mac(keys[kid], body, network))}"


def verify(token: str, keys: Mapping[str, str], *, now: float,
           client_ip: str | None = None) -> Grant:
    """The grant of a genuine, unexpired token. Raises TokenInvalid or TokenExpired."""
    if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
        raise TokenInvalid("malformed")
    body, _, sig = token.partition(".")
    grant = _claims(b64decode(body))
    secret = keys.get(grant.kid)
    if secret is None:
        raise TokenInvalid("unknown key")
    network = None
    if grant.ip_bound:
        if client_ip is None:
            raise TokenInvalid("no client address")
        try:
            network = client_network(client_ip)
        except ValueError:
            raise TokenInvalid("no client address") from None
    if not hmac.compare_digest(_mac(secret, body, network), b64decode(sig)):
        raise TokenInvalid("bad signature")
    if now >= grant.expires:
        raise TokenExpired("expired")
    return grant


def _claims(raw: bytes) -> Grant:
    """The claims as a Grant, checked for shape only (the MAC is checked by the caller)."""
    try:
        claims = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise TokenInvalid("claims are not JSON") from None
    if not isinstance(claims, dict) or not _FIELDS.issuperset(claims):
        raise TokenInvalid("claims")
    kid, exp = claims.get("kid"), claims.get("exp")
    sub, pfx, uid, ip = (claims.get(k) for k in ("sub", "pfx", "uid", "ip"))
    ok = (claims.get("v") == VERSION and type(claims.get("v")) is int
          and isinstance(kid, str) and KEY_ID.fullmatch(kid) is not None
          and type(exp) is int
          and (sub is None) != (pfx is None)
          and (sub is None or (isinstance(sub, str) and ASSET_ID.fullmatch(sub) is not None))
          and (pfx is None or (isinstance(pfx, str) and PREFIX.fullmatch(pfx) is not None))
          and (uid is None or (isinstance(uid, str) and 0 < len(uid) <= MAX_USER))
          and (ip is None or ip is True))
    if not ok:
        raise TokenInvalid("claims")
    assert isinstance(kid, str) and isinstance(exp, int)
    return Grant(kid=kid, expires=exp, asset=sub if isinstance(sub, str) else None,
                 prefix=pfx if isinstance(pfx, str) else None,
                 user=uid if isinstance(uid, str) else None, ip_bound=ip is True)


def check(token: str, keys: Mapping[str, str], asset_id: str, *, now: float,
          client_ip: str | None = None) -> Grant:
    """verify() and the grant covers `asset_id` (an id already validated)."""
    grant = verify(token, keys, now=now, client_ip=client_ip)
    if not grant.covers(asset_id):
        raise TokenInvalid("not for this asset")
    return grant
