"""What stands for a client in stored rows: an HMAC, never the address.

IAB counts a client as (IP address, User-Agent); an IPv6 client is its /64 network, as
one household's devices and privacy addresses change within it. The key is
HMAC-SHA256(salt of the UTC day, network + "\\n" + User-Agent), truncated: the salt is
random, kept in the database while the day may still get events (today and yesterday)
and deleted after, so a stored key cannot be traced back to an address even by someone
holding the database, and keys of different days cannot be linked.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from functools import lru_cache

KEY_HEX = 32  # 128 bits of the HMAC: collisions are no concern at any realistic audience
SALT_BYTES = 32


def new_salt() -> str:
    return secrets.token_hex(SALT_BYTES)


@lru_cache(maxsize=65536)  # a client asks many times; parsing is most of the cost
def network_of(ip: str) -> str:
    """IPv4: the address; IPv6: its /64 (an IPv4-mapped IPv6 address is its IPv4).
    Something that is no address is kept as given, newlines made spaces (the HMAC input
    stays unambiguous; it still only enters the HMAC)."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip.strip().replace("\n", " ")
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))
    return str(addr)


def client_key(salt: str, ip: str, ua: str) -> str:
    msg = (network_of(ip) + "\n" + ua).encode("utf-8", "replace")
    return hmac.digest(_key(salt), msg, "sha256").hex()[:KEY_HEX]


@lru_cache(maxsize=16)
def _key(salt: str) -> bytes:
    return bytes.fromhex(salt)
