"""Header names and fixed header values used by the origin, in one place.

Standard names come from `aiohttp.hdrs` (already `istr`, so lookups in the
case-insensitive header multidicts need no folding); the few that aiohttp does
not name, and the values the origin repeats, live here.
"""

from __future__ import annotations

from typing import Final

from aiohttp import hdrs
from multidict import istr

ACCEPT_ENCODING: Final = hdrs.ACCEPT_ENCODING
ACCEPT_RANGES: Final = hdrs.ACCEPT_RANGES
ACCESS_CONTROL_ALLOW_HEADERS: Final = hdrs.ACCESS_CONTROL_ALLOW_HEADERS
ACCESS_CONTROL_ALLOW_METHODS: Final = hdrs.ACCESS_CONTROL_ALLOW_METHODS
ACCESS_CONTROL_ALLOW_ORIGIN: Final = hdrs.ACCESS_CONTROL_ALLOW_ORIGIN
ACCESS_CONTROL_EXPOSE_HEADERS: Final = hdrs.ACCESS_CONTROL_EXPOSE_HEADERS
ACCESS_CONTROL_MAX_AGE: Final = hdrs.ACCESS_CONTROL_MAX_AGE
ACCESS_CONTROL_REQUEST_HEADERS: Final = hdrs.ACCESS_CONTROL_REQUEST_HEADERS
ACCESS_CONTROL_REQUEST_METHOD: Final = hdrs.ACCESS_CONTROL_REQUEST_METHOD
ALLOW: Final = hdrs.ALLOW
CACHE_CONTROL: Final = hdrs.CACHE_CONTROL
CONTENT_ENCODING: Final = hdrs.CONTENT_ENCODING
CONTENT_LENGTH: Final = hdrs.CONTENT_LENGTH
CONTENT_RANGE: Final = hdrs.CONTENT_RANGE
CONTENT_TYPE: Final = hdrs.CONTENT_TYPE
ETAG: Final = hdrs.ETAG
IF_MATCH: Final = hdrs.IF_MATCH
IF_MODIFIED_SINCE: Final = hdrs.IF_MODIFIED_SINCE
IF_NONE_MATCH: Final = hdrs.IF_NONE_MATCH
IF_RANGE: Final = hdrs.IF_RANGE
IF_UNMODIFIED_SINCE: Final = hdrs.IF_UNMODIFIED_SINCE
LAST_MODIFIED: Final = hdrs.LAST_MODIFIED
ORIGIN: Final = hdrs.ORIGIN
RANGE: Final = hdrs.RANGE
RETRY_AFTER: Final = hdrs.RETRY_AFTER
USER_AGENT: Final = hdrs.USER_AGENT
VARY: Final = hdrs.VARY
X_CACHE: Final = istr("X-Cache")  # HIT / MISS, informational (like CDNs)

# Values
BYTES: Final = "bytes"
GZIP: Final = "gzip"
NO_STORE: Final = "no-store"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
JSON_TYPE: Final = "application/json"
RETRY_AFTER_SECONDS: Final = "5"

# Headers a conditional or range request may carry; when none is present the
# hot path answers a cached object with precomputed headers.
CONDITIONAL_HEADERS: Final = (IF_MATCH, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE,
                              IF_RANGE, RANGE)
