"""nginx (Debian's nginx-light) as a CDN in front of the origin.

nginx runs as a caching reverse proxy (`proxy_cache`, `proxy_cache_revalidate`,
`proxy_cache_lock`) with no cache times of its own (no `proxy_cache_valid`): what it keeps
and for how long is decided only by the origin's Cache-Control. `X-Cache-Status` tells how
nginx answered. Checked: a second pass over every object of an asset never reaches the
origin; Range and If-None-Match are answered from the cache; the entry manifests expire as
their max-age says and are revalidated with a 304 from the origin; after re-packaging, the
CDN serves the new master playlist once its max-age has passed, while the old immutable
segments stay cached.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_clients import (
    ASSET_IDS,
    KINDS,
    HttpClient,
    Library,
    Origin,
    cdn,
    crawl_asset,
    local_env,
    package,
    serve,
)

SHORT_MAX_AGE = 2  # seconds, for the expiry test
NGINX_CLOCK = 1.2  # nginx's cache validity has a granularity of one second
STATUS = "X-Cache-Status"


@pytest.fixture
def edge(origin: Origin, tmp_path: Path) -> Iterator[str]:
    """A fresh nginx with an empty cache for each test."""
    with cdn(tmp_path / "nginx", origin.port) as base:
        yield base


def _statuses(crawl: object) -> dict[str, str | None]:
    return {p: r.header(STATUS) for p, r in crawl.objects.items()}  # type: ignore[attr-defined]


def _segment_path(lib: Library) -> str:
    rec = lib.record("audio")
    return f"/assets/{rec['id']}/v/{rec['version']}/medium/seg_00002.m4s"


@pytest.mark.parametrize("kind", KINDS)
def test_second_pass_is_served_entirely_from_the_cache(origin: Origin, edge: str,
                                                       lib: Library, kind: str) -> None:
    rec = lib.record(kind)
    extra = tuple(rec[k] for k in ("poster", "thumbnails") if rec.get(k))
    before = origin.media_requests()
    first = crawl_asset(edge, ASSET_IDS[kind], duration=rec["duration"], extra_paths=extra)
    misses = _statuses(first)
    assert set(misses.values()) == {"MISS"}, {p: s for p, s in misses.items() if s != "MISS"}
    after_first = origin.media_requests()
    assert after_first - before == len(first.objects), (
        "each object should have been asked of the origin exactly once")

    second = crawl_asset(edge, ASSET_IDS[kind], duration=rec["duration"], extra_paths=extra)
    assert second.paths == first.paths
    hits = _statuses(second)
    assert set(hits.values()) == {"HIT"}, {p: s for p, s in hits.items() if s != "HIT"}
    assert origin.media_requests() == after_first, "the second pass reached the origin"
    for path, resp in second.objects.items():
        assert resp.body == first.objects[path].body, path
        assert resp.header("ETag") == first.objects[path].header("ETag"), path


def test_range_requests_are_answered_from_the_cache(origin: Origin, edge: str,
                                                    lib: Library) -> None:
    path = _segment_path(lib)
    client = HttpClient(edge)
    # A Range on a cold object: nginx fetches the whole object once, caches it, cuts the range.
    cold = client.get(path, {"Range": "bytes=0-99"})
    assert cold.status == 206 and cold.header(STATUS) == "MISS", (cold.status, cold.headers)
    full = client.get(path)
    assert full.status == 200 and full.header(STATUS) == "HIT"
    size = len(full.body)
    assert cold.body == full.body[:100]
    assert cold.header("Content-Range") == f"bytes 0-99/{size}"
    requests = origin.media_requests()
    for spec, start, end in ((f"bytes=1000-{size + 50}", 1000, size - 1),
                             ("bytes=-500", size - 500, size - 1),
                             (f"bytes={size - 10}-", size - 10, size - 1),
                             ("bytes=100-1099", 100, 1099)):
        res = client.get(path, {"Range": spec})
        assert res.status == 206, (spec, res.status)
        assert res.header(STATUS) == "HIT", spec
        assert res.header("Content-Range") == f"bytes {start}-{end}/{size}", spec
        assert res.body == full.body[start:end + 1], spec
    bad = client.get(path, {"Range": f"bytes={size + 10}-"})
    assert bad.status == 416 and bad.header("Content-Range") == f"bytes */{size}"
    assert origin.media_requests() == requests, "ranges of a cached object reached the origin"


def test_conditional_requests_get_304_from_the_cache(origin: Origin, edge: str,
                                                     lib: Library) -> None:
    client = HttpClient(edge)
    for path in (_segment_path(lib), f"/assets/{ASSET_IDS['audio']}/master.m3u8"):
        first = client.get(path)
        etag, last_modified = first.header("ETag"), first.header("Last-Modified")
        assert first.status == 200 and etag and last_modified, path
        requests = origin.media_requests()
        res = client.get(path, {"If-None-Match": etag})
        assert res.status == 304 and res.body == b"", (path, res.status)
        assert res.header(STATUS) == "HIT" and res.header("ETag") == etag, path
        res = client.get(path, {"If-Modified-Since": last_modified})
        assert res.status == 304, (path, res.status)
        other = client.get(path, {"If-None-Match": '"not-this-one"'})
        assert other.status == 200 and other.body == first.body, path
        assert origin.media_requests() == requests, f"{path}: revalidation reached the origin"


def test_entry_manifests_expire_as_max_age_says(lib: Library, tmp_path: Path) -> None:
    """With a 2 s max-age on the entry manifests: after 2 s nginx asks the origin again,
    which answers 304 (REVALIDATED) while nothing changed; segments stay HIT throughout.
    Re-packaging publishes a new version: once the max-age has passed the CDN serves the
    new master playlist, and the old version's immutable segments are still HIT."""
    asset = ASSET_IDS["audio"]
    rec = lib.record("audio")
    env = local_env(lib.copy(tmp_path / "store"),
                    SORI_ORIGIN_MANIFEST_MAX_AGE=str(SHORT_MAX_AGE))
    with serve(env, tmp_path / "serve.log") as origin, \
            cdn(tmp_path / "nginx", origin.port) as edge:
        client = HttpClient(edge)
        master, mpd = f"/assets/{asset}/master.m3u8", f"/assets/{asset}/manifest.mpd"
        first = client.get(master)
        assert first.header("Cache-Control") == f"public, max-age={SHORT_MAX_AGE}"
        assert first.header(STATUS) == "MISS"
        assert client.get(master).header(STATUS) == "HIT"  # fresh within its max-age
        old = crawl_asset(edge, asset, duration=rec["duration"], client=client)
        # Both entry manifests are in nginx's cache now; let their max-age run out. nginx
        # keeps time in whole seconds and a copy stays valid through its last second, so
        # it can live up to one second longer than max-age.
        time.sleep(SHORT_MAX_AGE + NGINX_CLOCK)
        not_modified = origin.media_statuses().get("304", 0)
        for path in (master, mpd):
            res = client.get(path)
            assert res.status == 200 and res.body == old.objects[path].body, path
            assert res.header(STATUS) == "REVALIDATED", (path, res.header(STATUS))
            assert client.get(path).header(STATUS) == "HIT", f"{path}: 304 did not refresh it"
        assert origin.media_statuses().get("304", 0) == not_modified + 2, (
            "nginx should have revalidated both entry manifests with a conditional request")
        segments = sorted(old.hls_segments)
        assert {client.get(p).header(STATUS) for p in segments} == {"HIT"}

        package(env, lib.sources["audio"], asset)  # a new version of the same asset
        published = time.monotonic()
        # nginx's copy lives max-age; the origin's own memory keeps a manifest at most as
        # long (cache_policy.entry_ttl), so the new master is out within two max-ages.
        deadline = published + 2 * SHORT_MAX_AGE + NGINX_CLOCK + 2.0
        while True:
            res = client.get(master)
            assert res.status == 200
            if res.body != old.objects[master].body:
                break
            assert res.header(STATUS) in ("HIT", "REVALIDATED", "EXPIRED", "UPDATING")
            assert time.monotonic() < deadline, "the CDN still serves the old master playlist"
            time.sleep(0.2)
        assert res.header(STATUS) == "EXPIRED", res.header(STATUS)
        assert old.version not in res.body.decode()
        new = crawl_asset(edge, asset, duration=rec["duration"], client=client)
        assert new.version != old.version
        assert new.objects[master].header(STATUS) == "HIT"
        assert {new.objects[p].header(STATUS) for p in new.hls_segments} == {"MISS"}
        # Players that loaded the old master keep working from the cache.
        assert {client.get(p).header(STATUS) for p in segments} == {"HIT"}
        for p in old.paths:
            if p not in (master, mpd):
                res = client.get(p)
                assert res.status == 200 and res.header(STATUS) == "HIT", p
                assert res.body == old.objects[p].body, p
        client.close()
