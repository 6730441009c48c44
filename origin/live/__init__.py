"""Live TTS streams in the origin: ingest routes (origin.live.ingest) and serving the
growing asset (origin.live.serving), on the registry of streams this process owns
(packager.live.registry). `setup(app)` is called by origin.app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from origin.app import MEDIA_KEY
from origin.keys import CONFIG_KEY, LIVE_KEY, STORE_KEY
from origin.live import ingest
from origin.live.serving import LiveServing, time_now
from packager.live.registry import LiveRegistry

log = logging.getLogger("sori.live")

SHUTDOWN_SEAL_TIMEOUT = 10.0


def setup(app: web.Application) -> None:
    cfg = app[CONFIG_KEY]
    registry = app[LIVE_KEY] = LiveRegistry(app[STORE_KEY], cfg)
    media = app[MEDIA_KEY]
    media.live = registry
    media.live_serving = LiveServing(registry, media.cors, cfg.origin.public_url)
    r = app.router
    r.add_post("/v1/live", ingest.create, name="live-create")
    r.add_post("/v1/live/{id}/chunks", ingest.chunk, name="live-chunk")
    r.add_post("/v1/live/{id}/end", ingest.end, name="live-end")
    r.add_put("/v1/live/{id}/stream", ingest.put_stream, name="live-stream")
    r.add_get("/v1/live/{id}/ws", ingest.websocket, name="live-ws")
    r.add_get("/v1/live/{id}/events", ingest.events, name="live-events")
    r.add_get("/v1/time", time_now, name="time")
    app.cleanup_ctx.append(_lifecycle)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    registry: LiveRegistry = app[LIVE_KEY]

    async def recover() -> None:
        try:
            sealed = await registry.recover()
        except Exception as e:  # the store may be away at start-up
            log.warning("live: could not look for streams left live: %s", e)
            return
        if sealed:
            log.info("live: sealed %d stream(s) left live by a stopped origin: %s",
                     len(sealed), ", ".join(sealed))

    task = asyncio.create_task(recover(), name="sori-live-recover")
    yield
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    # A graceful stop seals what is live (a kill leaves it to the next start's recover).
    for stream in list(registry.streams.values()):
        if stream.state == "live":
            try:
                async with asyncio.timeout(SHUTDOWN_SEAL_TIMEOUT):
                    await registry.end(stream, reason="shutdown")
            except BaseException as e:  # noqa: BLE001 - shutting down: log and go on
                log.warning("live %s: not sealed at shutdown (%s); the next start will",
                            stream.asset_id, e)
    await registry.close()
