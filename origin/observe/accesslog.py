"""One structured (JSON) access-log line per request, on the `sori.access` logger.

Fields: ts, method, path (the token of a signed URL redacted), status, bytes, ms (duration), range, cache (hit/miss,
media only), remote, ua. The logger has no handler of its own: `origin.server`
attaches one writing to stderr; tests can use caplog.

Lines are formatted directly (no dict, no json.dumps of the whole line) and
handed to the logger in batches: one log record carries up to BATCH lines
joined by newlines, emitted when the batch is full or FLUSH_AFTER seconds
after its first line, and at shutdown (`flush`). A log record per request
cost the origin about a third of its throughput (bench/origin --access-log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from json.encoder import encode_basestring_ascii as _quote

from aiohttp import web

from origin.http import headers as h
from signing.urls import redact

logger = logging.getLogger("sori.access")

BATCH = 256  # lines per record at most
FLUSH_AFTER = 0.5  # seconds: the longest a line waits


def _str(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def format_line(ts: float, method: str, path: str, status: int, nbytes: int, seconds: float,
                byte_range: str | None, cache: str | None, remote: str | None,
                ua: str | None) -> str:
    """One JSON object on one line (strings escaped to ASCII, so no line breaks)."""
    return (f'{{"ts":{ts:.3f},"method":{_quote(method)},"path":{_quote(path)},'
            f'"status":{status},"bytes":{nbytes},"ms":{seconds * 1000.0:.2f},'
            f'"range":{_str(byte_range)},"cache":{_str(cache)},"remote":{_str(remote)},'
            f'"ua":{_str(ua)}}}')


class AccessLog:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(self, request: web.BaseRequest, status: int, nbytes: int, seconds: float,
               cache: str | None) -> None:
        if not self.enabled:
            return
        headers = request.headers
        self.write(request.method, request.rel_url.raw_path, status, nbytes, seconds,
                   headers.get(h.RANGE), cache, request.remote, headers.get(h.USER_AGENT))

    def write(self, method: str, path: str, status: int, nbytes: int, seconds: float,
              byte_range: str | None, cache: str | None, remote: str | None,
              ua: str | None) -> None:
        """A line from plain values (origin.fast_lane has no aiohttp request)."""
        if not self.enabled or not logger.isEnabledFor(logging.INFO):
            return
        lines = self._lines
        lines.append(format_line(time.time(), method, redact(path), status, nbytes, seconds,
                                 byte_range, cache, remote, ua))
        if len(lines) >= BATCH:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_AFTER, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            text = "\n".join(self._lines)
            self._lines.clear()
            logger.info(text)
