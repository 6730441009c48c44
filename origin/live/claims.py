"""Claiming the sealing of a dead owner's live stream, so that exactly one origin does it.

- Redis configured (`[jobs] backend = "redis"`): `SET sori:live-claim:{id} NX EX`, the
  queue's Redis, exact across machines.
- A local store (one machine, or a shared filesystem): a lock file created with O_EXCL
  under the store's root, `.live-claims/{id}`; a lock whose holder's pid is dead, or
  older than CLAIM_TTL, is broken.
- Otherwise (S3 without Redis): a conditional write of the claim object (`put_if`:
  If-None-Match, or If-Match on the ETag of a claim older than CLAIM_TTL, which is
  broken): of any number of claimants, exactly one wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from packager.live.registry import owner_gone, owner_id
from settings import Config
from storage.errors import Conflict, NotFound

log = logging.getLogger("sori.live")

PREFIX = ".live-claims/"
CLAIM_TTL = 300  # seconds after which a claim (a sealing that never finished) is broken


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

    # --- S3 without Redis: a conditional create ----------------------------------------

    async def _claim_store(self, asset_id: str) -> bool:
        key = f"{PREFIX}{asset_id}"
        token = f"{owner_id()}:{secrets.token_hex(8)}"
        body = json.dumps({"token": token, "at": time.time()}).encode()
        try:
            data, tag = await self.store.get_tagged(key)
        except NotFound:
            tag = None
        else:
            if time.time() - _claimed_at(data) < CLAIM_TTL:
                return False
        try:
            await self.store.put_if(key, body, "application/json", tag)
        except Conflict:
            return False  # another claimant came first
        self._tokens[asset_id] = token
        return True


def _claimed_at(data: bytes) -> float:
    """When a claim object was written (0, so it is broken, when it cannot be read)."""
    try:
        at = json.loads(data).get("at")
    except (ValueError, AttributeError):
        return 0.0
    return float(at) if isinstance(at, (int, float)) else 0.0
