"""check_key / check_prefix: the only gate between a URL path and a file or S3 key."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from storage import InvalidKey, check_key, check_prefix

ALLOWED = frozenset(string.ascii_letters + string.digits + "._-/")
MAX_KEY = 1024
SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=40)
# Mostly characters that matter to paths, plus anything at all.
HOSTILE = st.text(
    alphabet=st.one_of(st.sampled_from(list("./\\%\x00:~ ab")), st.characters()), max_size=60
)


def accepted(key: str) -> bool:
    try:
        check_key(key)
    except InvalidKey:
        return False
    return True


@given(HOSTILE)
@example("..")
@example("a/../b")
@example("/abs")
@example("a//b")
@example("a/./b")
@example("%2e%2e")
@example("a\\b")
@example("a\x00b")
@example("a/")
def test_an_accepted_key_cannot_leave_the_store(key: str) -> None:
    if not accepted(key):
        return
    assert check_key(key) == key
    assert set(key) <= ALLOWED
    assert not key.startswith("/") and not key.endswith("/")
    segments = key.split("/")
    assert "" not in segments and "." not in segments and ".." not in segments
    assert len(key) <= MAX_KEY


@given(st.lists(SEGMENT, min_size=1, max_size=8))
def test_keys_of_plain_segments_are_accepted(segments: list[str]) -> None:
    if any(s in (".", "..") for s in segments):
        return
    key = "/".join(segments)
    assert check_key(key) == key
    assert check_prefix(key + "/") == key + "/"


@pytest.mark.parametrize("key", [
    "", "..", ".", "a/../b", "a/..", "/abs", "a//b", "a/", "%2e%2e", "a%2fb", "a\\b",
    "..\\x", "a\x00b", "a b", "é", "x" * (MAX_KEY + 1), "a/" + "b" * 256,
])
def test_hostile_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


@pytest.mark.parametrize("prefix", ["a", "/", "/a/", "../", "a//", "a/../"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidKey):
        check_prefix(prefix)


def test_the_empty_prefix_is_the_whole_store() -> None:
    assert check_prefix("") == ""


def test_segment_pattern_matches_the_asset_id_shape() -> None:
    # Asset ids (CONTRACT.md section 4) are valid first segments.
    asset_id = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
    for candidate in ["a", "Talk-2024.v1", "x" * 128]:
        assert asset_id.fullmatch(candidate)
        assert accepted(candidate + "/master.m3u8")
