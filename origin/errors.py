"""JSON error responses, and the mapping of domain errors to HTTP at the edge.

Handlers raise domain exceptions (`storage.errors.NotFound`, `InvalidKey`,
`StoreUnavailable`, and whatever other packages register here); the edge
middleware in `origin.app` turns them into `{"error": "..."}` with the right
status, so no handler builds an error response by hand and no traceback ever
reaches a client (it is logged instead).

Other modules map their own errors with::

    from origin.errors import register_error
    register_error(InvalidInput, 400)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from aiohttp import web

from origin.http import headers as h
from signing.urls import redact
from storage.errors import InvalidKey, NotFound, StoreUnavailable, Unsupported

log = logging.getLogger("sori.origin")

_STATUS_BY_ERROR: dict[type[BaseException], int] = {
    NotFound: 404,
    InvalidKey: 400,
    Unsupported: 501,
    StoreUnavailable: 503,
    asyncio.TimeoutError: 503,
}

_MESSAGES = {
    400: "bad request",
    404: "not found",
    405: "method not allowed",
    412: "precondition failed",
    416: "range not satisfiable",
    500: "internal server error",
    501: "not implemented",
    503: "the store is unavailable, retry later",
}


def register_error(exc_type: type[BaseException], status: int) -> None:
    """Map a domain exception type (and its subclasses) to an HTTP status."""
    _STATUS_BY_ERROR[exc_type] = status


def status_for(exc: BaseException) -> int | None:
    for cls in type(exc).__mro__:
        status = _STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return None


def json_error(status: int, message: str | None = None, *,
               headers: Mapping[str, str] | None = None) -> web.Response:
    """`{"error": message}` with `status`; 503 carries Retry-After, 5xx never cached."""
    body = json.dumps({"error": message or _MESSAGES.get(status, "error")}).encode()
    resp = web.Response(status=status, body=body, headers=headers)
    resp.headers[h.CONTENT_TYPE] = h.JSON_TYPE
    if status == 503:
        resp.headers.setdefault(h.RETRY_AFTER, h.RETRY_AFTER_SECONDS)
    if status >= 500:
        resp.headers[h.CACHE_CONTROL] = h.NO_STORE
    return resp


def from_exception(exc: BaseException, request: web.Request) -> web.Response:
    """The JSON response for anything a handler raised."""
    if isinstance(exc, web.HTTPException):
        return _from_http_exception(exc)
    status = status_for(exc)
    if status is None:
        log.exception("unhandled error on %s %s", request.method, redact(request.path),
                      exc_info=exc)
        return json_error(500)
    if status >= 500:
        log.warning("%s on %s %s: %s", type(exc).__name__, request.method, redact(request.path),
                    exc)
    # Domain messages are ours (no paths outside the store, no secrets): safe to show
    # for client errors; server-side ones get the generic text.
    message = str(exc) if status < 500 and str(exc) else None
    return json_error(status, message)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    """aiohttp's own exceptions (404 no route, 405, 413...) as JSON, keeping their headers.

    The middleware re-raises those below 400 (a 304 or redirect raised on purpose).
    """
    if exc.content_type == h.JSON_TYPE:
        # Already JSON (raised by an API handler): pass it on as a plain response.
        return web.Response(status=exc.status, body=exc.body, headers=exc.headers)
    keep = {k: v for k, v in exc.headers.items()
            if k not in (h.CONTENT_TYPE, h.CONTENT_LENGTH)}
    text = exc.text or ""
    default = f"{exc.status}: {exc.reason}"
    message = text if text and text != default else _MESSAGES.get(exc.status, exc.reason.lower())
    return json_error(exc.status, message, headers=keep)
