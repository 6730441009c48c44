"""Which objects the origin serves under /assets, and how long caches may keep them.

The packager writes everything but the two entry manifests under a version
prefix that is never rewritten (DESIGN decision 3), so those URLs are
`immutable`; the entry manifests move when an asset is re-packaged and get a
short max-age. The asset record (`asset.json`) and anything else outside those
two classes is not media: the API serves the record, here it is a 404.
"""

from __future__ import annotations

import enum

from manifests import layout
from origin.http import headers as h


class ObjectClass(enum.Enum):
    IMMUTABLE = "immutable"  # under v/{version}/: bytes never change
    ENTRY = "entry"  # master.m3u8 / manifest.mpd at the asset root
    NOT_SERVED = "not_served"  # asset.json and anything else: 404


def classify(rel: str) -> ObjectClass:
    """Class of an object from its path relative to the asset root."""
    if layout.is_entry_manifest(rel):
        return ObjectClass.ENTRY
    if layout.is_immutable(rel):
        return ObjectClass.IMMUTABLE
    return ObjectClass.NOT_SERVED


class CachePolicy:
    """Cache-Control values for media responses, from the origin settings."""

    def __init__(self, manifest_max_age: int, error_max_age: int) -> None:
        self.manifest_max_age = manifest_max_age
        self.entry = f"public, max-age={manifest_max_age}"
        # RFC 9111 §4.2.2 lets caches store 404s heuristically; say how long explicitly.
        self.client_error = f"public, max-age={error_max_age}"
        self.server_error = h.NO_STORE

    def for_object(self, cls: ObjectClass) -> str:
        if cls is ObjectClass.IMMUTABLE:
            return h.IMMUTABLE
        if cls is ObjectClass.ENTRY:
            return self.entry
        return self.client_error

    def for_error(self, status: int) -> str:
        """5xx (including 503 while the store is away) must not be cached at all."""
        return self.server_error if status >= 500 else self.client_error

    def entry_ttl(self) -> float:
        """How long the origin's own memory may keep an entry manifest: a few seconds,
        never longer than the max-age it tells caches."""
        return float(min(2, self.manifest_max_age))
