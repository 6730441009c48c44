"""The origin's aiohttp application: wiring of routes, middleware and shared state.

    app = create_app(cfg, store)

Routes registered here: `/assets/...` (origin.media), `/healthz`, `/readyz`,
`/metrics` (origin.ops). Other modules add theirs in `_register_optional`
below: each is a module with a `setup(app)` function, imported when present.
They find the configuration and the store as `app[CONFIG_KEY]` and
`app[STORE_KEY]` (origin.keys) and the metrics registry as
`metrics_of(app).registry` (origin.observe.metrics).

One middleware, `edge`, wraps every request: it maps domain errors and
aiohttp's HTTP exceptions to JSON, adds CORS and the error Cache-Control to
media errors, counts the request in the metrics and writes the access-log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from origin import auth, errors, ops
from origin.http import headers as h
from origin.keys import BYTES_SENT, CACHE_RESULT, CONFIG_KEY, PREPARED, STORE_KEY, STREAMING
from origin.media import MediaHandler
from origin.observe.accesslog import AccessLog
from origin.observe.hits import Hits
from origin.observe.metrics import METRICS_KEY, ROUTE_MEDIA, Metrics, route_class
from origin.observe.metrics_share import SharedMetrics
from settings import Config
from signing.urls import redact
from storage.base import Store

log = logging.getLogger("sori.origin")

MEDIA_KEY = web.AppKey("sori.media", MediaHandler)
ACCESS_LOG_KEY = web.AppKey("sori.access_log", AccessLog)
# Listening analytics (origin.analytics sets it when [analytics] enabled): every media
# response is handed to it, here in `_finish` and by the fast lane.
HITS_KEY = web.AppKey("sori.hits", Hits)
# Write routes that take no API key: a player's CMCD reports (origin.analytics).
OPEN_WRITE_PATHS = frozenset(("/v1/cmcd",))

# Modules written alongside this one that register their own routes via setup(app).
OPTIONAL_MODULES = ("origin.api", "origin.pages", "origin.live", "origin.access.routes",
                    "origin.analytics", "origin.offline")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(cfg: Config, store: Store, *,
               shared_metrics: Path | None = None) -> web.Application:
    """The origin's application. `shared_metrics`: the directory through which the
    workers of a multi-worker origin answer /metrics for each other."""
    # No normalize_path_middleware: media URLs are never redirected (CONTRACT §4).
    app = web.Application(middlewares=[edge], client_max_size=cfg.origin.max_upload_bytes)
    app[CONFIG_KEY] = cfg
    app[STORE_KEY] = store
    metrics = app[METRICS_KEY] = Metrics()
    media = app[MEDIA_KEY] = MediaHandler(cfg, store, metrics)
    access_log = app[ACCESS_LOG_KEY] = AccessLog(cfg.origin.access_log)

    async def flush_access_log(_app: web.Application) -> None:
        access_log.flush()

    app.on_cleanup.append(flush_access_log)
    if shared_metrics is not None:
        _share_metrics(app, metrics, shared_metrics)

    # Every path under /assets/ goes to one handler, which parses the raw path itself.
    app.router.add_route("GET", "/assets/{tail:.*}", media.handle, name="media")
    app.router.add_route("HEAD", "/assets/{tail:.*}", media.handle)

    async def preflight(request: web.Request) -> web.StreamResponse:
        return media.preflight(request)

    app.router.add_route("OPTIONS", "/assets/{tail:.*}", preflight)
    ops.setup(app)
    _register_optional(app)
    return app


def _share_metrics(app: web.Application, metrics: Metrics, root: Path) -> None:
    metrics.shared = SharedMetrics(root, metrics.registry)

    async def publish(_app: web.Application) -> AsyncIterator[None]:
        assert metrics.shared is not None
        task = asyncio.create_task(metrics.shared.run(), name="sori-metrics-publish")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(publish)


def _register_optional(app: web.Application) -> None:
    """--- other modules register their routes here ---

    Each of OPTIONAL_MODULES that exists is imported and its `setup(app)` called.
    A module that is absent is skipped; one that fails to import is an error.
    """
    for name in OPTIONAL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app)


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    t0 = time.perf_counter()
    try:
        refused = (auth.check(request, request.app[CONFIG_KEY].security.api_keys)
                   if request.method in auth.WRITE_METHODS
                   and request.path not in OPEN_WRITE_PATHS else None)
        resp = refused if refused is not None else await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            _finish(request, exc, t0)
            raise
        resp = errors.from_exception(exc, request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if request.get(STREAMING):
            # The status line is already out: all that can be done is to drop the
            # connection (aiohttp closes it when a handler raises after prepare()).
            log.warning("%s %s aborted mid-response: %s", request.method,
                        redact(request.path), exc)
            _finish(request, request.get(PREPARED), t0, status=0)
            raise
        resp = errors.from_exception(exc, request)
    _finish(request, resp, t0)
    return resp


def _finish(request: web.Request, resp: web.StreamResponse | None, t0: float,
            status: int | None = None) -> None:
    """Media error headers, metrics, the access-log line and the analytics hit."""
    app = request.app
    route = route_class(request.path)
    code = status if status is not None else (resp.status if resp is not None else 0)
    if resp is not None and route == ROUTE_MEDIA and code >= 400:
        media = app[MEDIA_KEY]
        if h.CACHE_CONTROL not in resp.headers:
            resp.headers[h.CACHE_CONTROL] = media.policy.for_error(code)
        if h.ACCESS_CONTROL_ALLOW_ORIGIN not in resp.headers:
            media.cors.apply(request, resp)
    elif resp is not None and code >= 500:
        resp.headers[h.CACHE_CONTROL] = h.NO_STORE
    nbytes = request.get(BYTES_SENT)
    if nbytes is None:
        if resp is None or request.method == "HEAD" or code in (204, 304):
            nbytes = 0
        elif resp.prepared:
            nbytes = resp.body_length
        else:
            nbytes = resp.content_length or 0
    app[METRICS_KEY].observe_request(route, code, nbytes)
    app[ACCESS_LOG_KEY].record(request, code, nbytes, time.perf_counter() - t0,
                               request.get(CACHE_RESULT))
    hits = app.get(HITS_KEY)
    if hits is not None:
        # An aborted stream (code 0) delivered what it sent under the status it sent.
        hits.response(request, resp, code or (resp.status if resp is not None else 0), nbytes)
