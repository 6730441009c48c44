"""Operations endpoints: liveness, readiness (the store answers) and metrics."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from origin.errors import json_error
from origin.http import headers as h
from origin.keys import STORE_KEY
from origin.observe.metrics import handle_metrics
from storage.errors import StoreError

READY_TIMEOUT = 3.0

_OK = json.dumps({"status": "ok"}).encode()


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="ops-healthz")
    app.router.add_get("/readyz", readyz, name="ops-readyz")
    app.router.add_get("/metrics", handle_metrics, name="ops-metrics")


def _ok() -> web.Response:
    return web.Response(body=_OK, content_type=h.JSON_TYPE,
                        headers={h.CACHE_CONTROL: h.NO_STORE})


async def healthz(request: web.Request) -> web.Response:
    """200 whenever the process can answer at all."""
    return _ok()


async def readyz(request: web.Request) -> web.Response:
    """200 when the store answers a ping within READY_TIMEOUT, else 503 (no Retry-After
    needed by load balancers, but harmless)."""
    store = request.app[STORE_KEY]
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await store.ping()
    except (StoreError, TimeoutError, OSError) as e:
        return json_error(503, f"store unavailable: {str(e) or type(e).__name__}")
    return _ok()
