"""The client's address: the socket peer, or what a trusted proxy says it is.

`X-Forwarded-For` is believed only when the peer is one of `[origin] trusted_proxies`
(the edge or load balancer in front of the origin); then the list is read from the
right, skipping further trusted hops, and the first address that is not trusted is the
client (the left part of the list is whatever the client itself sent, so it is never
taken on trust). A malformed entry ends the walk: the last trusted hop is answered,
which an IP-bound token will not match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:5123"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
             trusted: tuple[Network, ...]) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: tuple[Network, ...]) -> str | None:
    """The client's address as a string, or None when the socket has no peer address."""
    if peer is None:
        return None
    if not trusted or not forwarded_for:
        return peer
    peer_addr = _address(peer)
    if peer_addr is None or not trusted or not forwarded_for or not _trusted(peer_addr, trusted):
        return peer
    hop = peer_addr
    for entry in reversed(forwarded_for.split(",")):
        addr = _address(entry)
        if addr is None:
            break
        hop = addr
        if not _trusted(addr, trusted):
            break
    return str(hop)
