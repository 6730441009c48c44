"""What the origin knows about one media object before sending it: type, validators,
cache policy, and the response headers that follow from them.

Computed once per object (and kept with it in the object cache), so a hit
costs a dict copy rather than string formatting.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

from origin.http import headers as h
from origin.http.cache_policy import ObjectClass
from origin.http.conditional import format_http_date
from origin.http.cors import CorsPolicy
from storage.base import ObjectInfo
from storage.content_types import DEFAULT_CONTENT_TYPE, content_type_for

COMPRESSIBLE = (".m3u8", ".mpd")
GZIP_MAX = 8 * 1024 * 1024  # larger text objects are served identity-encoded
_TEXT_TYPES = {"application/vnd.apple.mpegurl", "application/dash+xml", "text/vtt"}


def content_type(rel: str, info: ObjectInfo) -> str:
    """By extension (storage.content_types), except that a media type recorded by the
    packager (audio/mp4 vs video/mp4 for an init segment) wins for MP4 objects."""
    by_ext = content_type_for(rel)
    stored = info.content_type
    if by_ext in _TEXT_TYPES or not stored or stored == DEFAULT_CONTENT_TYPE:
        return by_ext
    if by_ext == DEFAULT_CONTENT_TYPE or stored.startswith(("audio/", "video/")):
        return stored
    return by_ext


def gzip_etag(etag: str) -> str:
    """A distinct strong validator for the gzip-encoded variant (RFC 9110 §8.8.3:
    different content codings are different representations)."""
    return etag[:-1] + '-gz"' if etag.endswith('"') else etag + "-gz"


@dataclass(slots=True)
class Representation:
    key: str
    info: ObjectInfo
    cls: ObjectClass
    cache_control: str
    compressible: bool
    last_modified: int  # whole seconds, as sent
    headers: dict[str, str]  # 200 headers (identity), without the per-request CORS part
    gz_headers: dict[str, str] | None = None
    body: bytes | None = None  # set when the object lives in the cache
    gz_body: bytes | None = field(default=None, repr=False)
    wire_head: bytes | None = field(default=None, repr=False)  # origin.fast_lane's header block
    # origin.fast_lane's header blocks for signed URLs, by the capped max-age they carry
    capped_heads: dict[int, bytes] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, key: str, rel: str, info: ObjectInfo, ocls: ObjectClass,
              cache_control: str, cors: CorsPolicy) -> Representation:
        compressible = rel.endswith(COMPRESSIBLE) and info.size <= GZIP_MAX
        last_modified = int(info.last_modified)
        base: dict[str, str] = {
            h.CONTENT_TYPE: content_type(rel, info),
            h.ACCEPT_RANGES: h.BYTES,
            h.CACHE_CONTROL: cache_control,
            h.LAST_MODIFIED: format_http_date(last_modified),
        }
        if cors.enabled:
            base.update(cors.static)
        vary = [v for v in (base.get(h.VARY),) if v]
        if compressible:
            vary.insert(0, "Accept-Encoding")
        if vary:
            base[h.VARY] = ", ".join(vary)
        headers = {**base, h.ETAG: info.etag}
        gz_headers = None
        if compressible:
            gz_headers = {**base, h.ETAG: gzip_etag(info.etag), h.CONTENT_ENCODING: h.GZIP}
        return cls(key, info, ocls, cache_control, compressible, last_modified, headers,
                   gz_headers)

    @property
    def size(self) -> int:
        return self.info.size

    def etag(self, gzipped: bool) -> str:
        return gzip_etag(self.info.etag) if gzipped else self.info.etag

    def gzipped(self) -> bytes:
        """The gzip body of a cached object, compressed once."""
        assert self.body is not None
        if self.gz_body is None:
            self.gz_body = compress(self.body)
        return self.gz_body


def compress(data: bytes) -> bytes:
    # mtime=0: the same bytes always compress to the same bytes, so the -gz ETag is strong.
    return gzip.compress(data, compresslevel=6, mtime=0)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110 §12.5.3: gzip (or x-gzip, or *) listed with a non-zero weight."""
    if not accept_encoding:
        return False
    star = False
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if coding == "*":
            star = q > 0
        else:
            return q > 0
    return star
