"""LocalStore.put_many, the live stream's write path: each object written atomically like
put_bytes (no temporary file left, never visible half written), the same key checks, a
directory removed underneath made again."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from storage.errors import InvalidKey
from storage.local import LocalStore


def test_writes_every_object_like_put_bytes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    items = [(f"talk/v1/low/seg_00001.{k}.m4s", bytes([k]) * (1000 + k)) for k in range(5)]
    items.append(("talk/v1/low/seg_00001.m4s", b"whole segment"))
    asyncio.run(store.put_many(items))
    for key, data in items:
        assert asyncio.run(store.get(key)) == data
        mode = stat.S_IMODE(os.stat(tmp_path / "media" / key).st_mode)
        assert mode == 0o644
    assert sorted(os.listdir(tmp_path / "media/talk/v1/low")) == sorted(
        k.rsplit("/", 1)[1] for k, _ in items)  # no temporary file left
    assert asyncio.run(store.list("talk/")) == sorted(k for k, _ in items)
    # Replacing an object: a new file (new inode), so a reader holding the old one keeps it.
    before = os.stat(tmp_path / "media" / items[0][0]).st_ino
    asyncio.run(store.put_many([(items[0][0], b"new")]))
    assert asyncio.run(store.get(items[0][0])) == b"new"
    assert os.stat(tmp_path / "media" / items[0][0]).st_ino != before


def test_a_directory_removed_underneath_is_made_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    asyncio.run(store.put_many([("a/b/one.m4s", b"1")]))
    asyncio.run(store.delete_prefix("a/"))
    assert not (tmp_path / "media/a").exists()
    asyncio.run(store.put_many([("a/b/two.m4s", b"2")]))
    assert asyncio.run(store.get("a/b/two.m4s")) == b"2"


@pytest.mark.parametrize("key", ["../out.m4s", "/abs.m4s", "a/../../b.m4s", "a/.~x.tmp"])
def test_keys_are_checked(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "media")
    with pytest.raises(InvalidKey):
        asyncio.run(store.put_many([(key, b"x")]))
    assert not (tmp_path / "out.m4s").exists()


def test_a_key_under_an_object_or_on_a_directory_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    asyncio.run(store.put_many([("a/b", b"object"), ("c/d/e", b"x")]))
    with pytest.raises(InvalidKey):
        asyncio.run(store.put_many([("a/b/c", b"under an object")]))
    with pytest.raises(InvalidKey):
        asyncio.run(store.put_many([("c/d", b"on a directory")]))
    assert sorted(os.listdir(tmp_path / "media/c")) == ["d"]  # no temporary file left


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "media").mkdir()
    (tmp_path / "media/link").symlink_to(outside)
    store = LocalStore(tmp_path / "media")
    with pytest.raises(InvalidKey):
        asyncio.run(store.put_many([("link/x.m4s", b"x")]))
    assert list(outside.iterdir()) == []
