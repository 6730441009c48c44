"""One structured (JSON) access-log line per request, on the `sori.access` logger.

Fields: ts, method, path, status, bytes, ms (duration), range, cache (hit/miss,
media only), remote, ua. The logger has no handler of its own: `origin.server`
attaches one writing to stderr; tests can use caplog.
"""

from __future__ import annotations

import json
import logging
import time

from aiohttp import web

from origin import headers as h

logger = logging.getLogger("sori.access")


class AccessLog:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def record(self, request: web.BaseRequest, status: int, nbytes: int, seconds: float,
               cache: str | None) -> None:
        if not self.enabled or not logger.isEnabledFor(logging.INFO):
            return
        headers = request.headers
        self.write(request.method, request.rel_url.raw_path, status, nbytes, seconds,
                   headers.get(h.RANGE), cache, request.remote, headers.get(h.USER_AGENT))

    def write(self, method: str, path: str, status: int, nbytes: int, seconds: float,
              byte_range: str | None, cache: str | None, remote: str | None,
              ua: str | None) -> None:
        """The line itself, from plain values (origin.fast_lane has no aiohttp request)."""
        if not self.enabled or not logger.isEnabledFor(logging.INFO):
            return
        line = {
            "ts": round(time.time(), 3),
            "method": method,
            "path": path,
            "status": status,
            "bytes": nbytes,
            "ms": round(seconds * 1000.0, 2),
            "range": byte_range,
            "cache": cache,
            "remote": remote,
            "ua": ua,
        }
        logger.info(json.dumps(line, separators=(",", ":")))
