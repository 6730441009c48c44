"""origin.http.request_head: which request heads the fast lane may read itself (the rest go to
aiohttp's parser, so every doubtful form must come back as None)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from origin.http.request_head import MAX_HEAD, parse_head

SEG = "/assets/talk-1/v/abc/low/seg_00001.m4s"


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_plain_get() -> None:
    h = parse_head(head(f"GET {SEG} HTTP/1.1", "Host: example.org", "User-Agent: x/1",
                        "Accept:  */*  "))
    assert h is not None
    assert (h.method, h.target, h.minor) == ("GET", SEG, 1)
    assert h.fields == {"host": "example.org", "user-agent": "x/1", "accept": "*/*"}
    assert h.bodyless


def test_names_are_case_folded_and_repeats_joined() -> None:
    h = parse_head(head(f"HEAD {SEG} HTTP/1.0", "HOST: a", "X-A: 1", "x-a: 2", "Empty:"))
    assert h is not None
    assert h.minor == 0
    assert h.fields == {"host": "a", "x-a": "1, 2", "empty": ""}


def test_target_is_kept_as_sent() -> None:
    h = parse_head(head("GET /assets/a%2e%2e/b?x=1&y=%00 HTTP/1.1", "Host: a"))
    assert h is not None and h.target == "/assets/a%2e%2e/b?x=1&y=%00"


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n",  # (the caller cuts at the first blank line)
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # unfinished
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",  # bare LF
    b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",  # bare CR in a value
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",  # space before the colon
    b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: caf\xe9\r\n\r\n",  # obs-text
    b"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n",
    b"GET http://a/assets/x HTTP/1.1\r\nHost: a\r\n\r\n",  # absolute-form
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
    b"\r\n\r\n",
])
def test_anything_not_plain_is_left_to_aiohttp(raw: bytes) -> None:
    assert parse_head(raw) is None


def test_overlong_heads_are_left_to_aiohttp() -> None:
    long_value = "a" * MAX_HEAD
    assert parse_head(head("GET / HTTP/1.1", "Host: a", f"X-Long: {long_value}")) is None


@pytest.mark.parametrize(("extra", "bodyless"), [
    ([], True),
    (["Content-Length: 0"], True),
    (["Content-Length: 5"], False),
    (["Content-Length: 00"], False),  # not worth reading: aiohttp decides
    (["Content-Length: 0", "Content-Length: 0"], False),
    (["Transfer-Encoding: chunked"], False),
    (["Transfer-Encoding: identity"], False),
    (["Upgrade: websocket", "Connection: Upgrade"], False),
])
def test_bodyless(extra: list[str], bodyless: bool) -> None:
    h = parse_head(head("POST /v1/assets HTTP/1.1", "Host: a", *extra))
    assert h is not None and h.bodyless is bodyless


def test_connect_is_never_bodyless() -> None:
    h = parse_head(head("CONNECT /x HTTP/1.1", "Host: a"))
    assert h is not None and not h.bodyless


_token = st.text(alphabet="!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-",
                 min_size=1, max_size=20)
_value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=40)


@given(st.lists(st.tuples(_token, _value), max_size=12))
def test_any_plain_head_round_trips(fields: list[tuple[str, str]]) -> None:
    raw = head(f"GET {SEG} HTTP/1.1", *(f"{k}: {v}" for k, v in fields))
    h = parse_head(raw)
    assert h is not None
    expected: dict[str, str] = {}
    for k, v in fields:
        key = k.lower()
        expected[key] = f"{expected[key]}, {v}" if key in expected else v
    assert h.fields == expected


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = parse_head(data + b"\r\n\r\n")
    if result is not None:
        assert result.target.startswith("/")
