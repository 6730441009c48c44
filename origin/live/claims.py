"""Claiming the sealing of a dead owner's live stream, so that exactly one origin does it.

- Redis configured (`[jobs] backend = "redis"`): `SET sori:live-claim:{id} NX EX`, the
  queue's Redis, exact across machines.
- A local store (one machine, or a shared filesystem): a lock file created with O_EXCL
  under the store's root, `.live-claims/{id}`; a lock whose holder's pid is dead, or
  older than CLAIM_TTL, is broken.
- Otherwise (S3 without Redis): the store compare: an existing fresh claim object is
  respected; else this process writes its token, waits SETTLE seconds and reads it back;
  the claim is its own only if the token is still there. S3 is strongly consistent, so
  two claimants can only both win if they write within SETTLE of each other's read,
  which the sweep's timing makes unlikely; sealing twice writes the same bytes anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from packager.live.registry import owner_gone, owner_id
from settings import Config
from storage.errors import NotFound

log = logging.getLogger("sori.live")

PREFIX = ".live-claims/"
CLAIM_TTL = 300  # seconds after which a claim (a sealing that never finished) is broken
SETTLE = 0.3


class Claims:
    def __init__(self, store: Any, cfg: Config) -> None:
        self.store = store
        self.redis_url = cfg.jobs.redis_url if cfg.jobs.backend == "redis" else None
        root = getattr(store, "root", None)
        self.root = Path(root) / PREFIX.rstrip("/") if isinstance(root, Path) else None
        self._redis: Any = None
        self._tokens: dict[str, str] = {}

    async def claim(self, asset_id: str) -> bool:
        if self.redis_url is not None:
            won = await self._claim_redis(asset_id)
            if won is not None:
                return won
        if self.root is not None:
            return await asyncio.to_thread(self._claim_file, asset_id)
        return await self._claim_store(asset_id)

    async def release(self, asset_id: str) -> None:
        token = self._tokens.pop(asset_id, None)
        if self.redis_url is not None and self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.delete(f"sori:live-claim:{asset_id}")
        if self.root is not None:
            with contextlib.suppress(OSError):
                (self.root / asset_id).unlink()
        elif token is not None:
            with contextlib.suppress(Exception):
                await self.store.delete(f"{PREFIX}{asset_id}")

    # --- Redis -------------------------------------------------------------------------

    async def _claim_redis(self, asset_id: str) -> bool | None:
        """True/False, or None when Redis cannot say (not installed, not reachable)."""
        try:
            if self._redis is None:
                import redis.asyncio as aioredis

                assert self.redis_url is not None
                self._redis = aioredis.from_url(self.redis_url, socket_timeout=2.0,
                                                socket_connect_timeout=2.0)
            won = await self._redis.set(f"sori:live-claim:{asset_id}", owner_id(), nx=True,
                                        ex=CLAIM_TTL)
        except Exception as e:  # noqa: BLE001 - fall back to the store's own claim
            log.warning("live %s: Redis claim not possible (%s); using the store", asset_id, e)
            return None
        return bool(won)

    # --- one machine: a lock file --------------------------------------------------------

    def _claim_file(self, asset_id: str) -> bool:
        assert self.root is not None
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / asset_id
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    holder = path.read_text().strip()
                    age = time.time() - path.stat().st_mtime
                except OSError:
                    continue
                if owner_gone(holder) and holder != owner_id() or age > CLAIM_TTL:
                    with contextlib.suppress(OSError):
                        path.unlink()
                    continue
                return False
            with os.fdopen(fd, "w") as f:
                f.write(owner_id())
            return True
        return False

    # --- S3 without Redis: write, settle, read back ---------------------------------------

    async def _claim_store(self, asset_id: str) -> bool:
        key = f"{PREFIX}{asset_id}"
        try:
            info = await self.store.stat(key)
            if time.time() - info.last_modified < CLAIM_TTL:
                return False
        except NotFound:
            pass
        token = f"{owner_id()}:{secrets.token_hex(8)}"
        await self.store.put_bytes(key, token.encode(), "text/plain")
        await asyncio.sleep(SETTLE)
        try:
            won = (await self.store.get(key)).decode() == token
        except NotFound:
            won = False
        if won:
            self._tokens[asset_id] = token
        return bool(won)
