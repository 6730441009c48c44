"""Pure parts of origin/access: the client address through trusted proxies, and the
max-age cap on responses to signed URLs."""

from __future__ import annotations

from origin.access.client_ip import client_address, networks
from origin.access.guard import cap_max_age

EDGE = networks(["127.0.0.1", "10.0.0.0/8", "::1"])


def test_peer_is_the_client_unless_trusted() -> None:
    assert client_address("203.0.113.9", "198.51.100.1", EDGE) == "203.0.113.9"
    assert client_address("203.0.113.9", None, EDGE) == "203.0.113.9"
    assert client_address(None, "198.51.100.1", EDGE) is None
    assert client_address("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


def test_forwarded_for_read_from_the_right() -> None:
    # The client may send any X-Forwarded-For: only the hops the edge appended count.
    assert client_address("127.0.0.1", "1.2.3.4, 198.51.100.1", EDGE) == "198.51.100.1"
    assert client_address("127.0.0.1", "198.51.100.1, 10.1.2.3", EDGE) == "198.51.100.1"
    assert client_address("::1", "2001:db8::7", EDGE) == "2001:db8::7"
    assert client_address("127.0.0.1", "[2001:db8::7]:443", EDGE) == "2001:db8::7"
    assert client_address("127.0.0.1", "198.51.100.1:5000", EDGE) == "198.51.100.1"
    assert client_address("::ffff:127.0.0.1", "198.51.100.1", EDGE) == "198.51.100.1"


def test_malformed_hops_stop_the_walk() -> None:
    assert client_address("127.0.0.1", "198.51.100.1, garbage", EDGE) == "127.0.0.1"
    assert client_address("127.0.0.1", "10.0.0.5, 10.0.0.6", EDGE) == "10.0.0.5"
    assert client_address("127.0.0.1", "", EDGE) == "127.0.0.1"


def test_cap_max_age() -> None:
    immutable = "public, max-age=31536000, immutable"
    assert cap_max_age(immutable, 120.7) == "public, max-age=120, immutable"
    assert cap_max_age("public, max-age=1", 300) == "public, max-age=1"
    assert cap_max_age("public, max-age=60, s-maxage=600", 30) == "public, max-age=30, s-maxage=30"
    assert cap_max_age("no-cache", 30) == "no-cache"
    assert cap_max_age(immutable, 0.4) == "no-store"
