"""Typed application keys shared by the origin's modules (config, store)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from settings import Config
from storage.base import Store

CONFIG_KEY = web.AppKey("sori.config", Config)
STORE_KEY = web.AppKey("sori.store", Store)
# The live streams this process owns (packager.live.registry.LiveRegistry; typed loosely so
# that modules which only look it up need not import the live package).
LIVE_KEY: web.AppKey[Any] = web.AppKey("sori.live", object)

# Per-request keys (request is a mutable mapping), read by the edge middleware.
CACHE_RESULT = web.RequestKey("sori.cache", str)  # "hit" / "miss" for media requests
BYTES_SENT = web.RequestKey("sori.bytes", int)  # body bytes sent, when the handler streamed
STREAMING = web.RequestKey("sori.streaming", bool)  # on the wire: errors can only abort it
# The streamed response whose status line went out: an aborted one still delivered
# BYTES_SENT bytes, which listening analytics count (a listener who stops mid-file).
PREPARED = web.RequestKey("sori.prepared", web.StreamResponse)
# The grant of the signed URL that admitted a request for a private asset (signing.tokens).
GRANT: web.RequestKey[Any] = web.RequestKey("sori.grant", object)
