"""Client keys (salted HMAC of IPv4 | IPv6 /64 and User-Agent) and offline countries."""

from __future__ import annotations

from analytics.geo import country
from analytics.privacy import KEY_HEX, client_key, network_of, new_salt


def test_networks() -> None:
    assert network_of("81.2.69.142") == "81.2.69.142"
    assert network_of("2003:e0:1:2::10") == "2003:e0:1:2::/64"
    assert network_of("2003:e0:1:2:aaaa:bbbb:cccc:dddd") == "2003:e0:1:2::/64"
    assert network_of("2003:e0:1:3::10") == "2003:e0:1:3::/64"
    assert network_of("::ffff:81.2.69.142") == "81.2.69.142"
    assert network_of(" junk ") == "junk"


def test_client_keys() -> None:
    salt, other = new_salt(), new_salt()
    assert salt != other and len(bytes.fromhex(salt)) == 32
    k = client_key(salt, "2003:e0:1:2::10", "UA")
    assert len(k) == KEY_HEX and int(k, 16) >= 0
    assert k == client_key(salt, "2003:e0:1:2::99", "UA")  # same /64
    assert k != client_key(salt, "2003:e0:1:3::10", "UA")
    assert k != client_key(salt, "2003:e0:1:2::10", "UA2")
    assert k != client_key(other, "2003:e0:1:2::10", "UA")  # another day
    assert client_key(salt, "1.2.3.4", "a\nb") != client_key(salt, "1.2.3.4\na", "b")
    assert "2003" not in k


def test_countries() -> None:
    assert country("81.2.69.142") == "GB"
    assert country("8.8.8.8") == "US"
    assert country("2003:e0::1") == "DE"
    assert country("::ffff:133.1.1.1") == "JP"
    for private in ("10.1.2.3", "127.0.0.1", "192.168.1.1", "::1", "fd00::1", "169.254.1.1"):
        assert country(private) is None, private
    assert country("not an address") is None
    assert country("") is None
