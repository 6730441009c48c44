"""Playback tokens (signing/): the documented test vectors, every way a token can be
altered, expiry, scope, IP binding, key rotation, and garbage that must only ever be
refused."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signing import tokens as t
from signing.urls import playback_paths, playback_urls, redact, split_token

KEYS = {"k1": "sori-test-vector-secret-0001"}
EXP = 1893456000
NOW = 1_800_000_000.0
VECTOR_1 = ("eyJ2IjoxLCJraWQiOiJrMSIsImV4cCI6MTg5MzQ1NjAwMCwic3ViIjoidGFsay0xIiwidWlkIjoidXNl"
            "ci00MiJ9.h2iHq441l_VBb88apNZxWJAOj7aECeWuJUGibF1R2dU")
VECTOR_2 = ("eyJ2IjoxLCJraWQiOiJrMSIsImV4cCI6MTg5MzQ1NjAwMCwicGZ4Ijoic2hvdy0xMi0iLCJpcCI6dHJ1"
            "ZX0.V2_NPa5NHU6FVhYwwlx4E34XmxrtFu4MbFARsTv0qsc")
VECTOR_3 = ("eyJ2IjoxLCJraWQiOiJrMSIsImV4cCI6MTg5MzQ1NjAwMCwic3ViIjoidGFsay0xIiwiaXAiOnRydWV9"
            ".vYjgDWg61Dr8ebzAqVivtoI5kgYlnyLSaM7a9kxuluI")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    body = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _with_claims(token: str, claims: dict[str, object]) -> str:
    """The token's MAC on other claims: what a forger can make without the key."""
    return f"{_b64(json.dumps(claims, separators=(',', ':')).encode())}.{token.split('.')[1]}"


# --- the documented vectors ---------------------------------------------------------------

def test_vectors_are_what_mint_makes() -> None:
    assert t.mint(KEYS, expires=EXP, asset="talk-1", user="user-42") == VECTOR_1
    assert t.mint(KEYS, expires=EXP, prefix="show-12-", client_ip="203.0.113.7") == VECTOR_2
    assert t.mint(KEYS, expires=EXP, asset="talk-1",
                  client_ip="2001:db8:1:2:3:4:5:6") == VECTOR_3


def test_vectors_verify() -> None:
    g = t.check(VECTOR_1, KEYS, "talk-1", now=NOW)
    assert (g.asset, g.user, g.expires, g.ip_bound) == ("talk-1", "user-42", EXP, False)
    g = t.check(VECTOR_2, KEYS, "show-12-ep3", now=NOW, client_ip="203.0.113.7")
    assert (g.prefix, g.ip_bound) == ("show-12-", True)
    t.check(VECTOR_3, KEYS, "talk-1", now=NOW, client_ip="2001:db8:1:2:ffff::9")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_vector_mac_is_plain_hmac_sha256_as_another_language_computes_it() -> None:
    for token, suffix in ((VECTOR_1, ""), (VECTOR_2, "\n203.0.113.7"),
                          (VECTOR_3, "\n2001:db8:1:2::/64")):
        body, mac = token.split(".")
        out = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", KEYS["k1"], "-binary"],
                             input=(body + suffix).encode(), capture_output=True, check=True)
        assert _b64(out.stdout) == mac


# --- refusals ------------------------------------------------------------------------------

def _reason(token: str, asset: str = "talk-1", keys: dict[str, str] = KEYS, now: float = NOW,
            client_ip: str | None = None) -> str:
    with pytest.raises(t.TokenError) as info:
        t.check(token, keys, asset, now=now, client_ip=client_ip)
    return info.value.reason


@pytest.mark.parametrize("field,value", [
    ("v", 2), ("kid", "k2"), ("exp", EXP + 1), ("exp", 2**40), ("sub", "talk-2"),
    ("uid", "user-43"), ("ip", True), ("pfx", "talk-"), ("extra", 1),
])
def test_every_altered_field_is_invalid(field: str, value: object) -> None:
    claims = _claims(VECTOR_1)
    claims[field] = value
    assert _reason(_with_claims(VECTOR_1, claims), client_ip="203.0.113.7") == "invalid"


def test_a_removed_field_is_invalid() -> None:
    for field in ("v", "kid", "exp", "sub", "uid"):
        claims = _claims(VECTOR_1)
        del claims[field]
        assert _reason(_with_claims(VECTOR_1, claims)) == "invalid"


def test_every_character_of_the_token_matters() -> None:
    for i in range(len(VECTOR_1)):
        if VECTOR_1[i] == ".":
            continue
        swapped = "A" if VECTOR_1[i] != "A" else "B"
        altered = VECTOR_1[:i] + swapped + VECTOR_1[i + 1:]
        with pytest.raises(t.TokenError):
            t.check(altered, KEYS, "talk-1", now=NOW)


def test_expired_only_for_a_genuine_token() -> None:
    assert _reason(VECTOR_1, now=EXP) == "expired"
    assert _reason(VECTOR_1, now=EXP + 10) == "expired"
    forged = _with_claims(VECTOR_1, {**_claims(VECTOR_1), "exp": 1})
    assert _reason(forged, now=NOW) == "invalid"


def test_scope() -> None:
    assert _reason(VECTOR_1, asset="talk-10") == "invalid"
    assert _reason(VECTOR_1, asset="talk") == "invalid"
    assert _reason(VECTOR_2, asset="show-1", client_ip="203.0.113.7") == "invalid"
    assert _reason(VECTOR_2, asset="xshow-12-a", client_ip="203.0.113.7") == "invalid"


def test_ip_binding() -> None:
    assert _reason(VECTOR_2, asset="show-12-a", client_ip="203.0.113.8") == "invalid"
    assert _reason(VECTOR_2, asset="show-12-a", client_ip=None) == "invalid"
    assert _reason(VECTOR_2, asset="show-12-a", client_ip="not an address") == "invalid"
    t.check(VECTOR_2, KEYS, "show-12-a", now=NOW, client_ip="::ffff:203.0.113.7")
    assert _reason(VECTOR_3, client_ip="2001:db8:1:3::1") == "invalid"


def test_rotation_and_removed_keys() -> None:
    both = {"k2": "a-new-secret-of-enough-length", **KEYS}
    new = t.mint(both, expires=EXP, asset="talk-1")
    assert _claims(new)["kid"] == "k2"  # the first key signs
    t.check(new, both, "talk-1", now=NOW)
    t.check(VECTOR_1, both, "talk-1", now=NOW)  # the old one still verifies
    assert _reason(VECTOR_1, keys={"k2": both["k2"]}) == "invalid"  # removed: refused
    assert _reason(new, keys={"k2": "another-secret-entirely!"}) == "invalid"


@given(st.text(max_size=300))
def test_garbage_is_only_ever_refused(text: str) -> None:
    with pytest.raises(t.TokenError):
        t.verify(text, KEYS, now=NOW, client_ip="203.0.113.7")


@given(st.binary(max_size=200), st.binary(max_size=40))
def test_garbage_in_token_shape_is_only_ever_refused(claims: bytes, mac: bytes) -> None:
    with pytest.raises(t.TokenError):
        t.verify(f"{_b64(claims)}.{_b64(mac)}", KEYS, now=NOW)


def test_mint_refuses_what_could_never_verify() -> None:
    for kwargs in ({"asset": "talk-1", "prefix": "t"}, {}, {"asset": "../x"},
                   {"prefix": ""}, {"asset": "a/b"}, {"asset": "talk-1", "kid": "k9"},
                   {"asset": "talk-1", "client_ip": "nope"}):
        with pytest.raises(ValueError):
            t.mint(KEYS, expires=EXP, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        t.mint({}, expires=EXP, asset="talk-1")


# --- URLs -----------------------------------------------------------------------------------

def test_paths_and_urls() -> None:
    assert split_token("~abc.def/v/1/a/seg_00001.m4s") == ("abc.def", "v/1/a/seg_00001.m4s")
    assert split_token("master.m3u8") == (None, "master.m3u8")
    paths = playback_paths("talk-1", "TOK")
    assert paths == {"hls": "/assets/talk-1/~TOK/master.m3u8",
                     "dash": "/assets/talk-1/~TOK/manifest.mpd",
                     "download": "/v1/assets/talk-1/download?token=TOK"}
    urls = playback_urls(KEYS, "talk-1", ttl=60, now=NOW, base_url="https://cdn.example/")
    assert urls["hls"].startswith("https://cdn.example/assets/talk-1/~")
    assert urls["expires_at"] == int(NOW) + 60
    assert urls["expires"] == "2027-01-15T08:01:00Z"
    t.check(urls["token"], KEYS, "talk-1", now=NOW)


def test_redact() -> None:
    assert redact("/assets/a/~SECRET.MAC/v/1/x.m4s") == "/assets/a/~redacted/v/1/x.m4s"
    assert redact("/assets/a/master.m3u8") == "/assets/a/master.m3u8"


def test_one_token_has_one_spelling() -> None:
    body, mac = VECTOR_1.split(".")
    # 32 bytes in 43 characters: the last one carries 4 bits and 2 unused ones.
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    i = last.index(mac[-1])
    for other in (last[i ^ 1], last[i ^ 2], last[i ^ 3]):
        with pytest.raises(t.TokenInvalid):
            t.check(f"{body}.{mac[:-1]}{other}", KEYS, "talk-1", now=NOW)
