"""Client address -> ISO 3166 country code, offline (iptocc: the regional registries'
delegation files, shipped inside the package). Looked up before the address is hashed:
the country is all of the address a stored row keeps."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import iptocc


@lru_cache(maxsize=65536)  # a client asks many times; parsing is most of the cost
def country(ip: str) -> str | None:
    """Two-letter code, or None for private, loopback, reserved and unknown addresses."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if not addr.is_global:
        return None
    try:
        code = iptocc.country_code(str(addr))
    except Exception:  # the library's own errors never reach the writer
        return None
    return code if isinstance(code, str) and len(code) == 2 else None
