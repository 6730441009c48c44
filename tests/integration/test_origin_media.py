"""/assets/{id}/...: CONTRACT §4 "HTTP behaviour every media response keeps", over a real
loopback server, for both stores and both delivery paths (from memory; from the store,
i.e. sendfile for the local store and ranged reads from S3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from test_origin_support import (
    ASSET,
    INIT,
    MEDIA_PLAYLIST,
    SEGMENT,
    SEGMENT_SIZE,
    VERSION,
    CountingStore,
    publish,
    raw_request,
)

from origin.app import create_app
from origin.http.conditional import format_http_date, parse_http_date
from sori.config import Config, OriginConfig
from storage.base import Store

IMMUTABLE = "public, max-age=31536000, immutable"
SEG_URL = f"/assets/{ASSET}/{SEGMENT}"
MASTER_URL = f"/assets/{ASSET}/master.m3u8"


@dataclass
class Media:
    client: TestClient[Any, Any]
    store: Store
    objects: dict[str, bytes]
    cfg: Config

    async def get(self, path: str, method: str = "GET", **headers: str) -> tuple[Any, bytes]:
        async with self.client.request(method, path, headers=headers,
                                       allow_redirects=False) as resp:
            return resp, await resp.read()


def _config(delivery: str, **origin: Any) -> Config:
    base = OriginConfig(cache_bytes=0) if delivery == "store" else OriginConfig()
    return Config(origin=dataclasses.replace(base, **origin))


@pytest.fixture(params=["memory", "store"])
def delivery(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def media(store: Store, delivery: str, origin_client: Any) -> Media:
    objects = await publish(store)
    cfg = _config(delivery)
    client = await origin_client(create_app(cfg, store), auto_decompress=False)
    return Media(client, store, objects, cfg)


# --- whole objects, types, validators, cache policy -------------------------------------

@pytest.mark.parametrize(
    ("rel", "ctype", "cache"),
    [
        ("master.m3u8", "application/vnd.apple.mpegurl", "public, max-age=60"),
        ("manifest.mpd", "application/dash+xml", "public, max-age=60"),
        (MEDIA_PLAYLIST, "application/vnd.apple.mpegurl", IMMUTABLE),
        (SEGMENT, "video/iso.segment", IMMUTABLE),
        (INIT, ("audio/mp4", "video/mp4"), IMMUTABLE),
        (f"v/{VERSION}/thumbs.vtt", "text/vtt", IMMUTABLE),
        (f"v/{VERSION}/poster.jpg", "image/jpeg", IMMUTABLE),
    ],
)
async def test_get_whole_object(media: Media, rel: str, ctype: Any, cache: str) -> None:
    for _ in range(2):  # a miss, then (in memory mode) a hit
        resp, body = await media.get(f"/assets/{ASSET}/{rel}", **{"Accept-Encoding": "identity"})
        assert resp.status == 200
        assert body == media.objects[rel]
        assert resp.headers["Content-Length"] == str(len(body))
        assert resp.content_type in (ctype if isinstance(ctype, tuple) else (ctype,))
        assert resp.headers["Cache-Control"] == cache
        assert resp.headers["Accept-Ranges"] == "bytes"
        etag = resp.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"')  # strong, not W/
        assert parse_http_date(resp.headers["Last-Modified"]) is not None
        assert "Content-Encoding" not in resp.headers


async def test_head_has_the_headers_and_no_body(media: Media) -> None:
    get, _ = await media.get(SEG_URL)
    head, body = await media.get(SEG_URL, method="HEAD")
    assert head.status == 200 and body == b""
    assert head.headers["Content-Length"] == str(SEGMENT_SIZE)
    for name in ("Content-Type", "ETag", "Last-Modified", "Cache-Control", "Accept-Ranges",
                 "Access-Control-Allow-Origin"):
        assert head.headers[name] == get.headers[name]


async def test_record_and_unknown_objects_are_404(media: Media) -> None:
    for path in (f"/assets/{ASSET}/asset.json", f"/assets/{ASSET}/nothing.m3u8",
                 f"/assets/{ASSET}/v/{VERSION}/low/seg_09999.m4s", "/assets/nobody/master.m3u8",
                 f"/assets/{ASSET}/", f"/assets/{ASSET}", "/assets/"):
        resp, body = await media.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "application/json"
        assert b'"error"' in body
        assert resp.headers["Cache-Control"] == "public, max-age=5"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


# --- ranges ------------------------------------------------------------------------------

N = SEGMENT_SIZE


@pytest.mark.parametrize(
    ("header", "status", "part"),
    [
        ("bytes=0-0", 206, (0, 1)),
        (f"bytes={N - 1}-{N - 1}", 206, (N - 1, N)),  # the last byte
        ("bytes=-1", 206, (N - 1, N)),
        ("bytes=5-", 206, (5, N)),
        ("bytes=-70000", 206, (N - 70000, N)),
        ("bytes=1000-70999", 206, (1000, 71000)),
        (f"bytes={N - 10}-{N + 100}", 206, (N - 10, N)),  # clamped
        (f"bytes={N}-", 416, None),  # beyond the end
        (f"bytes={N + 5}-{N + 10}", 416, None),
        ("bytes=-0", 416, None),
        ("bytes=10-5", 200, None),  # invalid: Range ignored
        ("bytes=0-1,5-6", 200, None),  # several ranges: whole object
        ("items=0-1", 200, None),  # unknown unit: ignored
        ("bytes=abc", 200, None),
    ],
)
async def test_ranges(media: Media, header: str, status: int,
                      part: tuple[int, int] | None) -> None:
    data = media.objects[SEGMENT]
    for _ in range(2):
        resp, body = await media.get(SEG_URL, Range=header)
        assert resp.status == status
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        if status == 206:
            assert part is not None
            assert body == data[part[0]:part[1]]
            assert resp.headers["Content-Range"] == f"bytes {part[0]}-{part[1] - 1}/{N}"
            assert resp.headers["Content-Length"] == str(part[1] - part[0])
            assert resp.headers["Cache-Control"] == IMMUTABLE
        elif status == 416:
            assert resp.headers["Content-Range"] == f"bytes */{N}"
            assert resp.content_type == "application/json"
        else:
            assert body == data
            assert "Content-Range" not in resp.headers


async def test_range_on_a_playlist_is_identity_encoded(media: Media) -> None:
    resp, body = await media.get(MASTER_URL, Range="bytes=0-6", **{"Accept-Encoding": "gzip"})
    assert resp.status == 206 and body == b"#EXTM3U"
    assert "Content-Encoding" not in resp.headers


async def test_head_ignores_range(media: Media) -> None:
    # RFC 9110 §14.2: range handling is defined for GET only.
    resp, body = await media.get(SEG_URL, method="HEAD", Range="bytes=0-9")
    assert resp.status == 200 and body == b""
    assert resp.headers["Content-Length"] == str(N)


async def test_if_range(media: Media) -> None:
    first, _ = await media.get(SEG_URL)
    etag, lm = first.headers["ETag"], first.headers["Last-Modified"]
    data = media.objects[SEGMENT]
    resp, body = await media.get(SEG_URL, Range="bytes=0-9", **{"If-Range": etag})
    assert resp.status == 206 and body == data[:10]
    resp, body = await media.get(SEG_URL, Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert resp.status == 200 and body == data
    resp, body = await media.get(SEG_URL, Range="bytes=0-9", **{"If-Range": "W/" + etag})
    assert resp.status == 200
    resp, body = await media.get(SEG_URL, Range="bytes=0-9", **{"If-Range": lm})
    assert resp.status == 206 and body == data[:10]
    older = format_http_date(parse_http_date(lm) - 3600)  # type: ignore[operator]
    resp, body = await media.get(SEG_URL, Range="bytes=0-9", **{"If-Range": older})
    assert resp.status == 200 and body == data


# --- conditional requests ------------------------------------------------------------------

async def test_not_modified(media: Media) -> None:
    first, _ = await media.get(SEG_URL)
    etag, lm = first.headers["ETag"], first.headers["Last-Modified"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": "*"},
                    {"If-None-Match": f'"nope", {etag}'}, {"If-None-Match": f"W/{etag}"},
                    {"If-Modified-Since": lm},
                    {"If-None-Match": etag, "If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}):
        resp, body = await media.get(SEG_URL, **headers)
        assert resp.status == 304, headers
        assert body == b""
        assert resp.headers["ETag"] == etag
        assert resp.headers["Cache-Control"] == IMMUTABLE
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    resp, _ = await media.get(SEG_URL, **{"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert resp.status == 200
    older = format_http_date(parse_http_date(lm) - 3600)  # type: ignore[operator]
    resp, _ = await media.get(SEG_URL, **{"If-Modified-Since": older})
    assert resp.status == 200
    resp, _ = await media.get(SEG_URL, method="HEAD", **{"If-None-Match": etag})
    assert resp.status == 304


async def test_if_match_failure_is_412(media: Media) -> None:
    resp, body = await media.get(SEG_URL, **{"If-Match": '"other"'})
    assert resp.status == 412 and b"error" in body


# --- gzip ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rel", ["master.m3u8", "manifest.mpd", MEDIA_PLAYLIST])
async def test_playlists_are_gzipped_when_accepted(media: Media, rel: str) -> None:
    url = f"/assets/{ASSET}/{rel}"
    plain, plain_body = await media.get(url, **{"Accept-Encoding": "identity"})
    for _ in range(2):
        gz, gz_body = await media.get(url, **{"Accept-Encoding": "gzip, deflate"})
        assert gz.status == 200
        assert gz.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(gz_body) == media.objects[rel] == plain_body
        assert len(gz_body) < len(plain_body)
        assert gz.headers["Content-Length"] == str(len(gz_body))
        assert "Accept-Encoding" in gz.headers["Vary"]
        assert "Accept-Encoding" in plain.headers["Vary"]
        assert gz.headers["ETag"] != plain.headers["ETag"]
        assert gz.headers["ETag"].endswith('-gz"')
    head, body = await media.get(url, method="HEAD", **{"Accept-Encoding": "gzip"})
    assert body == b"" and head.headers["Content-Length"] == str(len(gz_body))
    # Each variant revalidates with its own validator.
    resp, _ = await media.get(url, **{"Accept-Encoding": "gzip",
                                      "If-None-Match": gz.headers["ETag"]})
    assert resp.status == 304 and resp.headers["ETag"] == gz.headers["ETag"]
    resp, _ = await media.get(url, **{"Accept-Encoding": "identity",
                                      "If-None-Match": plain.headers["ETag"]})
    assert resp.status == 304


async def test_segments_are_not_gzipped(media: Media) -> None:
    resp, body = await media.get(SEG_URL, **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in resp.headers and body == media.objects[SEGMENT]


# --- CORS ----------------------------------------------------------------------------------

async def test_cors_headers_and_preflight(media: Media) -> None:
    resp, _ = await media.get(SEG_URL, Origin="https://player.example", Range="bytes=0-1")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"content-range", "content-length", "age", "etag", "accept-ranges"} <= exposed
    resp, body = await media.get(SEG_URL, method="OPTIONS", Origin="https://player.example",
                                 **{"Access-Control-Request-Method": "GET",
                                    "Access-Control-Request-Headers": "range, if-none-match"})
    assert resp.status in (200, 204) and body == b""
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    methods = {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "HEAD", "OPTIONS"} <= methods
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"range", "if-none-match", "if-range", "if-modified-since"} <= allowed
    assert int(resp.headers["Access-Control-Max-Age"]) > 0


async def test_cors_with_listed_origins(store: Store, origin_client: Any) -> None:
    await publish(store)
    cfg = _config("memory", cors_origins=("https://a.example",))
    client = await origin_client(create_app(cfg, store))
    for _ in range(2):
        async with client.get(SEG_URL, headers={"Origin": "https://a.example"}) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://a.example"
            assert "Origin" in resp.headers["Vary"]
        async with client.get(SEG_URL, headers={"Origin": "https://evil.example"}) as resp:
            assert resp.status == 200
            assert "Access-Control-Allow-Origin" not in resp.headers
    async with client.get(f"/assets/{ASSET}/nope.m3u8",
                          headers={"Origin": "https://a.example"}) as resp:
        assert resp.status == 404
        assert resp.headers["Access-Control-Allow-Origin"] == "https://a.example"


# --- paths that try to leave the asset; no redirects ----------------------------------------

PROBES = [
    f"/assets/{ASSET}/../secret.txt",
    f"/assets/{ASSET}/../../secret.txt",
    f"/assets/{ASSET}/%2e%2e/%2e%2e/secret.txt",
    f"/assets/{ASSET}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    f"/assets/{ASSET}/..%2f..%2fsecret.txt",
    f"/assets/{ASSET}/a%2fb",
    f"/assets/{ASSET}/v%2f{VERSION}%2flow%2fseg_00001.m4s",
    f"/assets/{ASSET}/master.m3u8%00",
    f"/assets/{ASSET}/%00/master.m3u8",
    f"/assets/{ASSET}/..%5c..%5csecret.txt",
    f"/assets/{ASSET}\\..\\secret.txt",
    f"/assets/{ASSET}/v/{VERSION}/..\\..\\asset.json",
    f"/assets/{ASSET}/%252e%252e/secret.txt",
    f"/assets/{ASSET}/./master.m3u8",
    f"/assets/{ASSET}//master.m3u8",
    f"/assets/{ASSET}/v/{VERSION}/../../asset.json",
    "/assets//etc/passwd",
    "/assets/../secret.txt",
    "/assets/%2e%2e/secret.txt",
    "/assets/.%2e/secret.txt",
    "/assets/" + "a" * 200 + "/master.m3u8",
    "/assets/-x/master.m3u8",
    "/assets/%2fetc%2fpasswd",
    "/assets/" + ASSET + "/" + "/".join(["x"] * 600),
]


@pytest.mark.parametrize("target", PROBES)
async def test_traversal_probes(media: Media, target: str, tmp_path: Any) -> None:
    (tmp_path / "secret.txt").write_text("TOPSECRET")  # beside the local store's root
    server = media.client.server
    status, headers, body = await raw_request(server.host, server.port, target)
    assert status in (400, 404), (target, status)
    assert b"TOPSECRET" not in body and b"root:" not in body and b"talk-1\"}" not in body


async def test_no_redirects_under_assets(media: Media) -> None:
    server = media.client.server
    for target in (f"/assets/{ASSET}/", f"/assets/{ASSET}", "/assets", "/assets/",
                   f"/assets/{ASSET}/v/{VERSION}/low/", f"/assets/{ASSET}/v/{VERSION}/low",
                   f"/assets/{ASSET}//master.m3u8", f"/assets/{ASSET}/master.m3u8/",
                   f"/assets/{ASSET}/MASTER.M3U8", SEG_URL + "?x=1", *PROBES[:6]):
        status, headers, _ = await raw_request(server.host, server.port, target)
        assert not 300 <= status < 400, (target, status)
        assert "location" not in headers
    status, _, body = await raw_request(server.host, server.port, SEG_URL + "?cb=123")
    assert status == 200 and body == media.objects[SEGMENT]


# --- the object cache ----------------------------------------------------------------------

async def test_concurrent_misses_make_one_store_read(store: Store, origin_client: Any) -> None:
    objects = await publish(store)
    counting = CountingStore(store, delay=0.05)
    client = await origin_client(create_app(Config(), counting))  # type: ignore[arg-type]

    async def fetch() -> bytes:
        async with client.get(SEG_URL) as resp:
            assert resp.status == 200
            return await resp.read()

    bodies = await asyncio.gather(*(fetch() for _ in range(40)))
    assert all(b == objects[SEGMENT] for b in bodies)
    # One read of the object, and one of the asset's record (is the asset still there,
    # is it private?); one stat of the object.
    assert sorted(counting.gets) == sorted([f"{ASSET}/{SEGMENT}", f"{ASSET}/asset.json"])
    assert counting.stats == [f"{ASSET}/{SEGMENT}"]
    await asyncio.gather(*(fetch() for _ in range(10)))
    assert len(counting.gets) == 2 and len(counting.stats) == 1  # all hits


async def test_large_objects_stream_and_keep_their_stat(store: Store,
                                                        origin_client: Any) -> None:
    objects = await publish(store)
    counting = CountingStore(store)
    cfg = _config("memory", cache_object_max=10_000)  # the 100 KB segment does not fit
    client = await origin_client(create_app(cfg, counting))  # type: ignore[arg-type]
    for _ in range(3):
        async with client.get(SEG_URL, headers={"Range": "bytes=10-20009"}) as resp:
            assert resp.status == 206
            assert await resp.read() == objects[SEGMENT][10:20010]
    assert counting.stats.count(f"{ASSET}/{SEGMENT}") == 1  # immutable: stat once
    assert f"{ASSET}/{SEGMENT}" not in counting.gets  # never the whole object


async def test_entry_manifest_changes_reach_clients(store: Store, origin_client: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    await publish(store)
    client = await origin_client(create_app(Config(), store))
    async with client.get(MASTER_URL) as resp:
        first_etag = resp.headers["ETag"]
    await store.put_bytes(f"{ASSET}/master.m3u8", b"#EXTM3U\n#v2\n",
                          "application/vnd.apple.mpegurl")
    await asyncio.sleep(2.1)  # the origin keeps an entry manifest at most ~2 s
    async with client.get(MASTER_URL, headers={"Accept-Encoding": "identity"}) as resp:
        assert await resp.read() == b"#EXTM3U\n#v2\n"
        assert resp.headers["ETag"] != first_etag


async def test_a_delete_on_another_worker_stops_this_one_serving(
        store: Store, origin_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two origins on one store (two workers): B deletes the asset, A has its segment in
    memory (answered by the fast lane). Once media.ALIVE_FOR has passed, A's next request
    starts a look at the asset's record (and is still answered); after that look, 404."""
    from origin import media as media_module

    monkeypatch.setattr(media_module, "ALIVE_FOR", 0.5)
    objects = await publish(store)
    a = await origin_client(create_app(Config(), store))
    b = await origin_client(create_app(Config(), store))
    for _ in range(3):
        async with a.get(SEG_URL) as resp:
            assert resp.status == 200 and await resp.read() == objects[SEGMENT]
    assert a.server.runner.server.lane.answered >= 1  # from memory, by the lane
    async with b.delete(f"/v1/assets/{ASSET}") as resp:
        assert resp.status == 204
    await asyncio.sleep(0.7)
    async with a.get(SEG_URL) as resp:  # answered while the look runs
        await resp.read()
    await asyncio.sleep(0.3)
    for _ in range(2):
        async with a.get(SEG_URL) as resp:
            assert resp.status == 404 and objects[SEGMENT][:64] not in await resp.read()
    async with a.get(MASTER_URL) as resp:
        assert resp.status == 404


async def test_memory_keeps_serving_while_the_store_cannot_answer(
        store: Store, origin_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking again at an asset's record must not turn a store outage into errors for
    objects memory holds: they are served on; objects not in memory get 503."""
    from origin import media as media_module
    from storage.errors import StoreUnavailable

    monkeypatch.setattr(media_module, "ALIVE_FOR", 0.2)
    objects = await publish(store)
    flaky = CountingStore(store)
    client = await origin_client(create_app(Config(), flaky))  # type: ignore[arg-type]
    async with client.get(SEG_URL) as resp:
        assert resp.status == 200
    down = StoreUnavailable("the store is down (test)")

    async def stat_down(key: str) -> Any:
        raise down

    monkeypatch.setattr(flaky, "stat", stat_down)
    await asyncio.sleep(0.3)  # the record must be looked at again
    for _ in range(3):
        async with client.get(SEG_URL) as resp:
            assert resp.status == 200
            assert await resp.read() == objects[SEGMENT]
    async with client.get(f"/assets/{ASSET}/{INIT}") as resp:
        assert resp.status == 503
