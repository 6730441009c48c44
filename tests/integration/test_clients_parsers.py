"""Everything the origin serves parses: the `m3u8` parser accepts the multivariant, media and
I-frame playlists, lxml validates the MPD against the DASH-MPD XSD, and every URL the
playlists and the MPD's SegmentTemplate + SegmentTimeline reference answers 200 with the
right content type and cache policy (real_clients.crawl_asset), as served over HTTP by
`sori serve` from the session's library (speech and a video clip packaged by the CLI).
"""

from __future__ import annotations

from typing import Any

import pytest
from real_clients import (
    ASSET_IDS,
    KINDS,
    Library,
    Origin,
    crawl_asset,
)


def _extra_paths(rec: dict[str, Any]) -> tuple[str, ...]:
    """The poster and the thumbnail track of a video asset (the crawler follows the track
    to its sprites)."""
    return tuple(rec[k] for k in ("poster", "thumbnails") if rec.get(k))


@pytest.mark.parametrize("kind", KINDS)
def test_every_object_parses_and_resolves(origin: Origin, lib: Library, kind: str) -> None:
    rec = lib.record(kind)
    crawl = crawl_asset(origin.base, ASSET_IDS[kind], duration=rec["duration"],
                        extra_paths=_extra_paths(rec))
    assert crawl.version == rec["version"]
    assert sorted(crawl.renditions) == sorted(r["id"] for r in rec["renditions"])
    videos = [r for r in rec["renditions"] if "width" in r]
    assert len(crawl.variants) == (len(videos) if kind == "video" else len(rec["renditions"]))
    # init + media segments of every rendition, each one URL shared by HLS and DASH
    assert len(crawl.hls_segments) == sum(1 + len(_segments(crawl, r["id"]))
                                          for r in rec["renditions"])
    if kind == "video":
        assert any(p.endswith("/iframes.m3u8") for p in crawl.objects)
        assert any(p.endswith("/thumbs.jpg") for p in crawl.objects)


@pytest.mark.parametrize("kind", KINDS)
def test_gzip_encoded_manifests_parse_the_same(origin: Origin, kind: str) -> None:
    """Players send Accept-Encoding: gzip; the playlists and the MPD then come compressed
    and must decode to the same bytes as the identity ones."""
    plain = crawl_asset(origin.base, ASSET_IDS[kind])
    gz = crawl_asset(origin.base, ASSET_IDS[kind], headers={"Accept-Encoding": "gzip"})
    assert plain.paths == gz.paths
    manifests = [p for p in plain.paths if p.endswith((".m3u8", ".mpd"))]
    assert manifests
    for path in manifests:
        assert gz.objects[path].header("Content-Encoding") == "gzip", path
        assert gz.objects[path].content == plain.objects[path].body, path
        assert gz.objects[path].header("ETag") != plain.objects[path].header("ETag"), path


def test_the_crawler_fails_loudly_on_a_missing_asset(origin: Origin) -> None:
    """The crawler's own check: a 404 where a manifest should be is a failure, not a pass."""
    with pytest.raises(AssertionError, match="404"):
        crawl_asset(origin.base, "no-such-asset")


def _segments(crawl: Any, rendition: str) -> list[str]:
    return [p for p in crawl.hls_segments if f"/{rendition}/seg_" in p]
