"""Live TTS streams in the origin: ingest routes (origin.live.ingest) and serving the
growing asset (origin.live.serving), on the registry of streams this process owns
(packager.live.registry). `setup(app)` is called by origin.app.

Across workers and replicas: a stream's owner writes its internal address in the
stream's directory entry (origin.live.directory), other processes forward the stream's
requests to it (origin.live.peers, origin.live.remote), and every process sweeps for
streams whose owner died and seals them (origin.live.claims makes that happen once).
`advertise(app, url)` is called by origin.server once the internal address listens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from origin.app import MEDIA_KEY
from origin.keys import CONFIG_KEY, LIVE_KEY, STORE_KEY
from origin.live import ingest
from origin.live.directory import LiveDirectory
from origin.live.peers import PeerProxy
from origin.live.remote import RemoteStreams
from origin.live.serving import LiveServing, time_now
from packager.live.registry import LiveRegistry

log = logging.getLogger("sori.live")

SHUTDOWN_SEAL_TIMEOUT = 10.0
REMOTE_KEY = web.AppKey("sori.live.remote", RemoteStreams)


def setup(app: web.Application) -> None:
    cfg = app[CONFIG_KEY]
    registry = app[LIVE_KEY] = LiveRegistry(app[STORE_KEY], cfg)
    media = app[MEDIA_KEY]
    media.live = registry
    media.live_serving = LiveServing(registry, media.cors, cfg.origin.public_url)
    remote = app[REMOTE_KEY] = RemoteStreams(LiveDirectory(registry, cfg), PeerProxy())
    media.live_remote = remote

    def is_local(asset_id: str) -> bool:
        return registry.get(asset_id) is not None

    r = app.router
    r.add_post("/v1/live", ingest.create, name="live-create")
    r.add_post("/v1/live/{id}/chunks", remote.route(ingest.chunk, is_local), name="live-chunk")
    r.add_post("/v1/live/{id}/end", remote.route(ingest.end, is_local), name="live-end")
    r.add_put("/v1/live/{id}/stream", remote.route(ingest.put_stream, is_local),
              name="live-stream")
    r.add_get("/v1/live/{id}/ws", remote.route(ingest.websocket, is_local), name="live-ws")
    r.add_get("/v1/live/{id}/events", remote.route(ingest.events, is_local),
              name="live-events")
    r.add_get("/v1/time", time_now, name="time")
    app.cleanup_ctx.append(_lifecycle)


def advertise(app: web.Application, url: str) -> None:
    """This process answers other workers and replicas for its streams at `url`."""
    if LIVE_KEY in app:
        app[LIVE_KEY].peer_url = url.rstrip("/")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    registry: LiveRegistry = app[LIVE_KEY]
    remote = app[REMOTE_KEY]

    async def recover() -> None:
        # The sweep seals what a stopped origin left live (at once for an owner whose
        # pid is dead here, after its heartbeats stop for one elsewhere), claimed once
        # among the workers and replicas; then it keeps the heartbeats and sweeps going.
        try:
            sealed = await remote.directory.sweep()
        except Exception as e:  # the store may be away at start-up
            log.warning("live: could not look for streams left live: %s", e)
        else:
            if sealed:
                log.info("live: sealed %d stream(s) left live by a stopped origin: %s",
                         len(sealed), ", ".join(sealed))
        await remote.directory.run()

    task = asyncio.create_task(recover(), name="sori-live-directory")
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
    await remote.proxy.close()
