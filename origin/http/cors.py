"""CORS for media responses (Fetch standard, "CORS protocol").

Players load segments with XHR/fetch from other origins, so every response
under /assets carries `Access-Control-Allow-Origin` (errors included: a player
must be able to read a 404 or a 503 to react to it), exposes the headers a
player needs to read (`Content-Range` for ranges, `Content-Length`, `Age` for
live latency maths), and preflights allow `Range`, the conditional headers and the
four CMCD headers.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from aiohttp import web

from origin.http import headers as h

ALLOWED_METHODS = "GET, HEAD, OPTIONS"
ALLOWED_REQUEST_HEADERS = ("range", "if-range", "if-none-match", "if-modified-since",
                           "if-match", "if-unmodified-since", "accept-encoding", "cache-control",
                           # CMCD in header mode (CTA-5004; hls.js, dash.js and Shaka can
                           # send it so), recorded by the analytics (origin.observe.hits)
                           "cmcd-request", "cmcd-object", "cmcd-status", "cmcd-session")
EXPOSED_HEADERS = "Content-Range, Content-Length, Age, ETag, Accept-Ranges, Last-Modified, Date"
PREFLIGHT_MAX_AGE = "86400"


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        origins = tuple(origins)
        self.any_origin = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")
        # Headers every media response gets regardless of the request, so they can be
        # folded into precomputed header sets.
        self.static: dict[str, str] = {h.ACCESS_CONTROL_EXPOSE_HEADERS: EXPOSED_HEADERS}
        if self.any_origin:
            self.static[h.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
        else:
            # The answer depends on Origin: shared caches must key on it.
            self.static[h.VARY] = "Origin"

    @property
    def enabled(self) -> bool:
        return self.any_origin or bool(self.origins)

    def allow_origin(self, request_origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request, or None for no CORS."""
        if self.any_origin:
            return "*"
        if request_origin is not None and request_origin in self.origins:
            return request_origin
        return None

    def dynamic(self, request: web.BaseRequest, out: MutableMapping[str, str]) -> None:
        """Add the request-dependent part (the echoed origin) to response headers."""
        if not self.any_origin:
            allowed = self.allow_origin(request.headers.get(h.ORIGIN))
            if allowed is not None:
                out[h.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed

    def apply(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """Full CORS headers on a response built elsewhere (errors)."""
        if not self.enabled:
            return
        for k, v in self.static.items():
            if k == h.VARY and h.VARY in response.headers:
                if "origin" not in response.headers[h.VARY].lower():
                    response.headers[h.VARY] = response.headers[h.VARY] + ", Origin"
            else:
                response.headers[k] = v
        self.dynamic(request, response.headers)

    def preflight(self, request: web.Request) -> web.Response:
        """Answer an OPTIONS preflight (204) for any path under /assets."""
        headers: dict[str, str] = {
            h.ACCESS_CONTROL_ALLOW_METHODS: ALLOWED_METHODS,
            h.ACCESS_CONTROL_MAX_AGE: PREFLIGHT_MAX_AGE,
            h.ALLOW: ALLOWED_METHODS,
        }
        requested = request.headers.get(h.ACCESS_CONTROL_REQUEST_HEADERS, "")
        names = [n.strip().lower() for n in requested.split(",") if n.strip()]
        allowed = [n for n in names if n in ALLOWED_REQUEST_HEADERS]
        headers[h.ACCESS_CONTROL_ALLOW_HEADERS] = ", ".join(
            dict.fromkeys(allowed + list(ALLOWED_REQUEST_HEADERS)))
        resp = web.Response(status=204, headers=headers)
        self.apply(request, resp)
        return resp
