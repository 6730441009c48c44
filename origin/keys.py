"""Typed application keys shared by the origin's modules (config, store)."""

from __future__ import annotations

from aiohttp import web

from sori.config import Config
from storage.base import Store

CONFIG_KEY = web.AppKey("sori.config", Config)
STORE_KEY = web.AppKey("sori.store", Store)

# Per-request keys (request is a mutable mapping), read by the edge middleware.
CACHE_RESULT = "sori.cache"  # "hit" / "miss" for media requests
BYTES_SENT = "sori.bytes"  # body bytes actually sent, when the handler streamed them
STREAMING = "sori.streaming"  # the response is on the wire: errors can only abort it
