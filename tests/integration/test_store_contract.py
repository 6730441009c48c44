"""The Store contract, run against LocalStore and S3Store (a real S3-protocol server).

Tests taking `store` run once per implementation; the few that only make sense
for one of them say so in their name.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from packager.publish import update_record
from storage import (
    Conflict,
    InvalidKey,
    LocalStore,
    NotFound,
    S3Store,
    Store,
    StoreUnavailable,
    Unsupported,
)
from storage.content_types import CONTENT_TYPES

if TYPE_CHECKING:
    from tests.conftest import MotoServer

DATA = bytes(range(256)) * 40  # 10,240 bytes with a recognisable pattern
SEG = "video/iso.segment"
MIB = 1024 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    """`size` pseudo-random bytes, the same for the same seed (fast: no per-byte Python)."""
    block = bytes((i * 7 + seed) % 251 for i in range(65_521))  # prime length: no MiB period
    return (block * (size // len(block) + 1))[:size]


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [c async for c in chunks]


async def read_all(store: Store, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(await collect(store.read(key, start, end)))


# --- put, get, stat --------------------------------------------------------------------

async def test_put_then_get_and_stat(store: Store) -> None:
    before = time.time()
    info = await store.put_bytes("talk/v1/audio/seg-1.m4s", DATA, SEG)
    assert info.key == "talk/v1/audio/seg-1.m4s"
    assert info.size == len(DATA)
    assert await store.get("talk/v1/audio/seg-1.m4s") == DATA
    st = await store.stat("talk/v1/audio/seg-1.m4s")
    assert st.size == len(DATA)
    assert st.etag == info.etag
    assert st.etag.startswith('"') and st.etag.endswith('"') and len(st.etag) > 2
    assert not st.etag.startswith('W/')
    assert st.content_type == SEG
    assert before - 5 <= st.last_modified <= time.time() + 5


async def test_empty_object(store: Store) -> None:
    await store.put_bytes("a/empty.json", b"", "application/json")
    assert (await store.stat("a/empty.json")).size == 0
    assert await store.get("a/empty.json") == b""
    assert await read_all(store, "a/empty.json") == b""
    assert await read_all(store, "a/empty.json", 0, 10) == b""


async def test_overwrite_replaces_the_bytes(store: Store) -> None:
    await store.put_bytes("a/x.json", b"old bytes", "application/json")
    await store.put_bytes("a/x.json", b"new", "application/json")
    assert await store.get("a/x.json") == b"new"
    assert (await store.stat("a/x.json")).size == 3


# --- ranges and streaming --------------------------------------------------------------

N = len(DATA)


@pytest.mark.parametrize(("start", "end"), [
    (0, None),          # whole object
    (100, None),        # open range "bytes=100-"
    (100, 200),         # start and end
    (0, 1),             # first byte
    (N - 1, None),      # last byte
    (N - 10, N),        # suffix-like
    (1000, N + 500),    # end beyond the size: clamped
    (N, None),          # starts at the end: nothing
    (N + 5, N + 10),    # starts past the end: nothing
    (7, 7),             # empty range
])
async def test_ranges(store: Store, start: int, end: int | None) -> None:
    await store.put_bytes("r/data.m4s", DATA, SEG)
    assert await read_all(store, "r/data.m4s", start, end) == DATA[start:end]


async def test_large_object_streams_in_small_chunks(store: Store) -> None:
    body = payload(3 * MIB + 123)
    await store.put_bytes("big/seg.m4s", body, SEG)
    chunk = 64 * 1024
    chunks = await collect(store.read("big/seg.m4s", chunk_size=chunk))
    assert all(0 < len(c) <= chunk for c in chunks)
    assert len(chunks) >= len(body) // chunk
    assert b"".join(chunks) == body
    # A range in the middle arrives in chunks too, and only the range.
    start, end = MIB + 17, 2 * MIB + 5
    ranged = await collect(store.read("big/seg.m4s", start, end, chunk_size=chunk))
    assert all(len(c) <= chunk for c in ranged)
    assert b"".join(ranged) == body[start:end]


async def test_abandoning_a_stream_releases_it(store: Store) -> None:
    body = payload(2 * MIB)
    await store.put_bytes("big/a.m4s", body, SEG)
    for _ in range(20):  # more than the S3 connection pool holds if leaked
        stream = store.read("big/a.m4s", chunk_size=4096)
        assert isinstance(stream, AsyncIterator)
        first = await anext(stream)
        assert first == body[:4096]
        await stream.aclose()  # type: ignore[attr-defined]
    assert await read_all(store, "big/a.m4s", 10, 20) == body[10:20]


async def test_concurrent_reads(store: Store) -> None:
    bodies = {f"c/{i}.m4s": payload(200_000, seed=i) for i in range(8)}
    await asyncio.gather(*(store.put_bytes(k, v, SEG) for k, v in bodies.items()))
    got = await asyncio.gather(*(read_all(store, k) for k in bodies))
    assert got == list(bodies.values())


# --- listing and deleting --------------------------------------------------------------

async def _populate(store: Store) -> None:
    for key in ["one/asset.json", "one/v1/master.m3u8", "one/v1/a/init.mp4",
                "one/v1/a/seg-1.m4s", "two/asset.json", "top.json"]:
        await store.put_bytes(key, b"x", "application/octet-stream")


async def test_list(store: Store) -> None:
    assert await store.list() == []
    await _populate(store)
    assert await store.list() == sorted([
        "one/asset.json", "one/v1/a/init.mp4", "one/v1/a/seg-1.m4s", "one/v1/master.m3u8",
        "top.json", "two/asset.json",
    ])
    assert await store.list("one/v1/") == ["one/v1/a/init.mp4", "one/v1/a/seg-1.m4s",
                                           "one/v1/master.m3u8"]
    assert await store.list("nothing/") == []
    assert await store.list("on/") == []  # a prefix is a whole directory, not a string prefix


async def test_list_dirs(store: Store) -> None:
    assert await store.list_dirs() == []
    await _populate(store)
    assert await store.list_dirs() == ["one", "two"]
    assert await store.list_dirs("one/") == ["v1"]
    assert await store.list_dirs("one/v1/") == ["a"]
    assert await store.list_dirs("one/v1/a/") == []
    assert await store.list_dirs("nothing/") == []


async def test_delete(store: Store) -> None:
    await _populate(store)
    await store.delete("one/v1/a/seg-1.m4s")
    with pytest.raises(NotFound):
        await store.stat("one/v1/a/seg-1.m4s")
    await store.delete("one/v1/a/seg-1.m4s")  # again: not an error
    await store.delete("never/there.json")
    assert "one/v1/a/init.mp4" in await store.list("one/")


async def test_delete_prefix(store: Store) -> None:
    await _populate(store)
    assert await store.delete_prefix("one/v1/") == 3
    assert await store.list("one/") == ["one/asset.json"]
    assert await store.list_dirs("one/") == []
    assert await store.delete_prefix("one/") == 1
    assert await store.list_dirs() == ["two"]
    assert await store.delete_prefix("nothing/") == 0
    assert await store.delete_prefix("") == 2
    assert await store.list() == []


async def test_a_directory_is_not_an_object(store: Store) -> None:
    await store.put_bytes("d/inner/x.json", b"x", "application/json")
    with pytest.raises(NotFound):
        await store.stat("d/inner")
    with pytest.raises(NotFound):
        await store.get("d")


# --- errors ----------------------------------------------------------------------------

async def test_missing_keys_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.stat("no/such.m4s")
    with pytest.raises(NotFound):
        await store.get("no/such.m4s")
    with pytest.raises(NotFound):
        await read_all(store, "no/such.m4s")
    with pytest.raises(NotFound):
        await read_all(store, "no/such.m4s", 5, 5)


HOSTILE_KEYS = ["..", "a/../b", "../outside", "/abs", "/etc/passwd", "a\x00b", "a//b", "./a",
                "a/.", "%2e%2e", "%2e%2e/x", "a\\b", "..\\x", "", "a/", "x" * 1025]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_hostile_keys_are_refused(store: Store, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.stat(key)
    with pytest.raises(InvalidKey):
        await store.get(key)
    with pytest.raises(InvalidKey):
        await read_all(store, key)
    with pytest.raises(InvalidKey):
        await store.put_bytes(key, b"x", "application/octet-stream")
    with pytest.raises(InvalidKey):
        await store.delete(key)
    with pytest.raises(InvalidKey):
        store.local_path(key)
    assert await store.list() == []


@pytest.mark.parametrize("prefix", ["..", "../", "/", "a", "a//", "%2e%2e/"])
async def test_hostile_prefixes_are_refused(store: Store, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        await store.list(prefix)
    with pytest.raises(InvalidKey):
        await store.list_dirs(prefix)
    with pytest.raises(InvalidKey):
        await store.delete_prefix(prefix)


# --- validators and types --------------------------------------------------------------

async def test_etag_is_stable_and_follows_the_bytes(store: Store) -> None:
    first = await store.put_bytes("e/x.json", b'{"v": 1}', "application/json")
    assert (await store.stat("e/x.json")).etag == first.etag
    assert (await store.stat("e/x.json")).etag == first.etag
    await asyncio.sleep(0.01)
    second = await store.put_bytes("e/x.json", b'{"v": 2}', "application/json")
    assert second.etag != first.etag
    assert (await store.stat("e/x.json")).etag == second.etag
    other = await store.put_bytes("e/y.json", b'{"v": 3}', "application/json")
    assert other.etag not in (first.etag, second.etag)


# --- conditional writes (records, claims) ----------------------------------------------

async def test_put_if_with_no_tag_creates_only_an_absent_object(store: Store) -> None:
    await store.put_if("c/claim.json", b'{"who": 1}', "application/json", None)
    with pytest.raises(Conflict):
        await store.put_if("c/claim.json", b'{"who": 2}', "application/json", None)
    data, tag = await store.get_tagged("c/claim.json")
    assert data == b'{"who": 1}' and tag
    with pytest.raises(NotFound):
        await store.get_tagged("c/none.json")


async def test_put_if_writes_only_over_the_bytes_it_read(store: Store) -> None:
    await store.put_bytes("c/rec.json", b'{"v": 1}', "application/json")
    data, tag = await store.get_tagged("c/rec.json")
    assert data == b'{"v": 1}'
    assert (await store.get_tagged("c/rec.json"))[1] == tag  # stable while unchanged
    await store.put_if("c/rec.json", b'{"v": 2}', "application/json", tag)
    _, tag2 = await store.get_tagged("c/rec.json")
    assert tag2 != tag
    # a writer that read before the change loses, and writes nothing
    with pytest.raises(Conflict):
        await store.put_if("c/rec.json", b'{"v": "stale"}', "application/json", tag)
    assert await store.get("c/rec.json") == b'{"v": 2}'
    # an object removed since it was read: the write loses too, and creates nothing
    await store.delete("c/rec.json")
    with pytest.raises(Conflict):
        await store.put_if("c/rec.json", b'{"v": 3}', "application/json", tag2)
    with pytest.raises(NotFound):
        await store.stat("c/rec.json")
    with pytest.raises(InvalidKey):
        await store.put_if("../rec.json", b"x", "application/json", None)


async def test_conditional_updates_from_many_tasks_lose_none(store: Store) -> None:
    """update_record's read-change-write from 24 concurrent tasks: every change counted."""
    async def bump(n: int) -> None:
        def change(rec: dict[str, Any] | None) -> dict[str, Any]:
            rec = rec or {"id": "count", "seen": []}
            rec["seen"] = [*rec["seen"], n]
            return rec
        await update_record(store, "count", change)

    await asyncio.gather(*(bump(n) for n in range(24)))
    rec = json.loads(await store.get("count/asset.json"))
    assert sorted(rec["seen"]) == list(range(24))


_BUMPER = """
import asyncio, sys
from packager.publish import update_record
from storage import LocalStore

async def main(root, who, times):
    store = LocalStore(root)
    def change(rec):
        rec = rec or {"id": "count", "seen": []}
        rec["seen"].append(who)
        return rec
    for _ in range(times):
        await update_record(store, "count", change)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_local_conditional_updates_from_many_processes_lose_none(tmp_path: Path) -> None:
    """Workers of one machine share a local store: four processes, 40 updates each, at
    once; the record ends with all 160 (a plain read-then-write loses some)."""
    root = tmp_path / "media"
    procs = [subprocess.Popen([sys.executable, "-c", _BUMPER, str(root), f"p{i}", "40"])
             for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    rec = json.loads((root / "count" / "asset.json").read_bytes())
    assert {f"p{i}": 40 for i in range(4)} == {w: rec["seen"].count(w) for w in set(rec["seen"])}
    assert not [p for p in root.rglob("*") if "~" in p.name]  # no temporary file left


@pytest.mark.parametrize(("ext", "expected"), sorted(CONTENT_TYPES.items()))
async def test_content_type_by_extension(store: Store, ext: str, expected: str) -> None:
    key = f"t/file{ext}"
    info = await store.put_bytes(key, b"x", expected)
    assert info.content_type == expected
    assert (await store.stat(key)).content_type == expected


async def test_unknown_extension_is_octet_stream(store: Store) -> None:
    await store.put_bytes("t/blob.bin", b"x", "")
    assert (await store.stat("t/blob.bin")).content_type == "application/octet-stream"


# --- files -----------------------------------------------------------------------------

async def test_put_file(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "init.mp4"
    src.write_bytes(DATA)
    info = await store.put_file("f/v1/init.mp4", src, "video/mp4")
    assert info.size == len(DATA)
    assert await store.get("f/v1/init.mp4") == DATA
    assert (await store.stat("f/v1/init.mp4")).content_type == "video/mp4"


async def test_put_file_over_the_multipart_threshold(store: Store, tmp_path: Path) -> None:
    body = payload(12 * MIB, seed=3)
    src = tmp_path / "download.m4a"
    src.write_bytes(body)
    info = await store.put_file("f/download.m4a", src, "audio/mp4")
    st = await store.stat("f/download.m4a")
    assert st.size == info.size == len(body)
    if isinstance(store, S3Store):
        # A multipart ETag is "<md5 of part md5s>-<part count>": 12 MiB in 5 MiB parts.
        assert st.etag.endswith('-3"'), st.etag
    assert await read_all(store, "f/download.m4a", 5 * MIB - 3, 5 * MIB + 3) == \
        body[5 * MIB - 3:5 * MIB + 3]
    assert await read_all(store, "f/download.m4a") == body


# --- presigned URLs, local paths, ping -------------------------------------------------

def _fetch(url: str) -> tuple[bytes, str | None]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers.get("Content-Disposition")


async def test_presign_on_s3_gives_a_working_attachment_url(s3_store: S3Store) -> None:
    await s3_store.put_bytes("p/download.m4a", DATA, "audio/mp4")
    url = await s3_store.presign("p/download.m4a", 600, filename='Talk "one".m4a')
    body, disposition = await asyncio.to_thread(_fetch, url)
    assert body == DATA
    assert disposition is not None
    assert disposition.startswith("attachment;")
    assert 'filename="Talk _one_.m4a"' in disposition
    url = await s3_store.presign("p/download.m4a", 600, filename="Café.m4a")
    _body, disposition = await asyncio.to_thread(_fetch, url)
    # RFC 6266 section 4.3: an ASCII fallback plus the exact name per RFC 8187.
    assert disposition == "attachment; filename=\"Caf_.m4a\"; filename*=UTF-8''Caf%C3%A9.m4a"
    plain = await s3_store.presign("p/download.m4a", 60)
    assert (await asyncio.to_thread(_fetch, plain))[0] == DATA


async def test_presign_on_local_is_unsupported(local_store: LocalStore) -> None:
    await local_store.put_bytes("p/download.m4a", DATA, "audio/mp4")
    with pytest.raises(Unsupported, match="s3 backend"):
        await local_store.presign("p/download.m4a", 600, filename="x.m4a")


async def test_local_path(store: Store) -> None:
    await store.put_bytes("l/x.json", b"{}", "application/json")
    path = store.local_path("l/x.json")
    if isinstance(store, LocalStore):
        assert path is not None and path.read_bytes() == b"{}"
        assert store.local_path("l/missing.json") is None
    else:
        assert path is None


async def test_ping(store: Store) -> None:
    await store.ping()


async def test_local_ping_creates_the_root(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "media"
    await LocalStore(root).ping()
    assert root.is_dir()


async def test_local_ping_fails_on_a_file_root(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.write_bytes(b"not a directory")
    with pytest.raises(StoreUnavailable):
        await LocalStore(root).ping()


# --- LocalStore and the file system ----------------------------------------------------

async def test_local_refuses_symlinks_out_of_the_root(local_store: LocalStore,
                                                      tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_bytes(b"secret")
    root = local_store.root
    (root / "a").mkdir(parents=True)
    (root / "a" / "leak.json").symlink_to(outside / "secret.json")
    (root / "evil").symlink_to(outside, target_is_directory=True)

    for key in ["a/leak.json", "evil/secret.json"]:
        with pytest.raises(InvalidKey):
            await local_store.stat(key)
        with pytest.raises(InvalidKey):
            await read_all(local_store, key)
        with pytest.raises(InvalidKey):
            local_store.local_path(key)
    with pytest.raises(InvalidKey):
        await local_store.put_bytes("evil/new.json", b"x", "application/json")
    with pytest.raises(InvalidKey):
        await local_store.delete("evil/secret.json")
    with pytest.raises(InvalidKey):
        await local_store.delete_prefix("evil/")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json"]
    assert (outside / "secret.json").read_bytes() == b"secret"
    assert await local_store.list() == []  # symlinks are not objects


async def test_local_refuses_symlink_loops(local_store: LocalStore) -> None:
    local_store.root.mkdir(parents=True)
    (local_store.root / "loop").symlink_to(local_store.root / "loop")
    with pytest.raises(InvalidKey):
        await local_store.stat("loop/x.json")
    with pytest.raises((InvalidKey, NotFound)):
        await local_store.stat("loop")
    assert await local_store.list() == []


async def test_local_writes_leave_no_temporary_files(local_store: LocalStore) -> None:
    await asyncio.gather(*(local_store.put_bytes("w/x.m4s", payload(100_000, i), SEG)
                           for i in range(10)))
    assert [p.name for p in (local_store.root / "w").iterdir()] == ["x.m4s"]
    assert await local_store.list() == ["w/x.m4s"]


async def test_local_delete_prefix_removes_empty_directories(local_store: LocalStore) -> None:
    await _populate(local_store)
    await local_store.delete_prefix("one/")
    assert sorted(p.name for p in local_store.root.iterdir()) == ["top.json", "two"]
    await local_store.delete("two/asset.json")
    assert sorted(p.name for p in local_store.root.iterdir()) == ["top.json"]


async def test_local_key_under_an_existing_object_is_refused(local_store: LocalStore) -> None:
    await local_store.put_bytes("k/file", b"x", "application/octet-stream")
    with pytest.raises(InvalidKey):
        await local_store.put_bytes("k/file/child", b"x", "application/octet-stream")
    with pytest.raises(NotFound):
        await local_store.stat("k/file/child")


# --- S3 outages ------------------------------------------------------------------------

OUTAGE_TIMEOUT = 1.5  # StorageConfig.timeout for the outage store, seconds
ANSWER_WITHIN = 3 * OUTAGE_TIMEOUT + 1  # retries included


async def _unavailable_quickly(call: object) -> None:
    assert asyncio.iscoroutine(call)
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await call
    assert time.monotonic() - t0 < ANSWER_WITHIN


async def test_s3_store_survives_a_server_restart(s3_outage_server: MotoServer) -> None:
    store = S3Store(s3_outage_server.info.config("outage", timeout=OUTAGE_TIMEOUT))
    try:
        await store.ping()
        await store.put_bytes("o/x.json", b"{}", "application/json")

        s3_outage_server.stop()
        await _unavailable_quickly(store.ping())
        await _unavailable_quickly(store.stat("o/x.json"))
        await _unavailable_quickly(read_all(store, "o/x.json"))
        await _unavailable_quickly(store.put_bytes("o/y.json", b"{}", "application/json"))

        s3_outage_server.start()  # moto forgets everything: the bucket is made again
        await store.ping()
        await store.put_bytes("o/x.json", b"{}", "application/json")
        assert await store.get("o/x.json") == b"{}"
    finally:
        await store.close()


async def test_s3_store_started_while_the_server_is_down(s3_outage_server: MotoServer) -> None:
    s3_outage_server.stop()
    store = S3Store(s3_outage_server.info.config("late", timeout=OUTAGE_TIMEOUT))
    try:
        await _unavailable_quickly(store.ping())
        await _unavailable_quickly(store.list())
        s3_outage_server.start()
        await store.ping()
        assert await store.list() == []
    finally:
        await store.close()


async def test_s3_store_times_out_on_a_hung_server(s3_outage_server: MotoServer) -> None:
    store = S3Store(s3_outage_server.info.config("hung", timeout=OUTAGE_TIMEOUT))
    try:
        await store.put_bytes("h/x.json", b"{}", "application/json")
        s3_outage_server.pause()  # accepts connections, never answers
        try:
            await _unavailable_quickly(store.stat("h/x.json"))
            await _unavailable_quickly(store.ping())
        finally:
            s3_outage_server.resume()
        assert (await store.stat("h/x.json")).size == 2
    finally:
        await store.close()
