"""Who owns each live stream, kept alive by heartbeats; sealing the streams of dead owners.

The directory is the store itself: while a stream is live its marker `.live/{id}`
(packager.live.registry) holds `{"owner": "host:pid", "url": "http://...", "beat": t}`,
rewritten by its owner every `heartbeat` seconds. Any origin on the same store, whatever
its machine, reads it there: no Redis is needed, on one machine or several. A lookup is
kept for a moment (LOOKUP_TTL) so that requests do not each read the store.

Each origin process also sweeps the markers every `sweep` seconds: a stream whose owner
is gone, because its pid is dead on this machine or because its marker has not changed
for `stale_after` seconds (measured on this process's own clock, so clocks of different
machines never matter), is claimed once (origin.live.claims) and sealed from what the
store holds (`LiveRegistry.recover_one`), the seal a restarted origin would do. Intervals
follow `[live] producer_timeout` so that a dead owner's stream is sealed within it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from manifests import layout
from origin.live.claims import Claims
from packager import publish
from packager.live.registry import MARKERS, LiveRegistry, owner_gone, owner_id
from settings import Config
from storage.errors import NotFound

log = logging.getLogger("sori.live")

LOOKUP_TTL = 1.0  # seconds a directory entry read from the store is used
MISS_TTL = 2.0  # seconds "not live" is remembered for an asset whose record exists


@dataclass(frozen=True, slots=True)
class Entry:
    owner: str  # host:pid
    url: str | None  # where the owner answers for its streams
    beat: float | None = None

    @property
    def local(self) -> bool:
        return self.owner == owner_id()


def parse_marker(data: bytes) -> Entry:
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):  # an older marker: the owner alone
        return Entry(data.decode(errors="replace").strip(), None)
    url = doc.get("url")
    beat = doc.get("beat")
    return Entry(str(doc.get("owner", "")), url if isinstance(url, str) and url else None,
                 float(beat) if isinstance(beat, int | float) else None)


def intervals(producer_timeout: float) -> tuple[float, float, float]:
    """(heartbeat, sweep, stale_after) seconds for a producer-silence timeout: a dead
    owner's stream is found within about stale_after + sweep."""
    beat = min(2.0, max(0.25, producer_timeout / 6))
    return beat, beat, 4 * beat


class LiveDirectory:
    def __init__(self, registry: LiveRegistry, cfg: Config) -> None:
        self.registry = registry
        self.store = registry.store
        self.beat, self.sweep_every, self.stale_after = intervals(cfg.live.producer_timeout)
        # a pid alive on this machine is given this long without a heartbeat
        self.local_stale_after = max(self.stale_after, 3 * cfg.live.producer_timeout)
        self.claims = Claims(self.store, cfg)
        self._entries: dict[str, tuple[float, Entry | None]] = {}
        self._seen: dict[str, tuple[bytes, float]] = {}  # marker bytes, when they changed
        self.sealed: list[str] = []  # streams this process sealed for a dead owner

    # --- lookups ---------------------------------------------------------------------

    async def owner_of(self, asset_id: str, *, fresh_miss: bool = False) -> Entry | None:
        """The entry of a live stream, or None when it is not live (no marker)."""
        now = time.monotonic()
        cached = self._entries.get(asset_id)
        if cached is not None and cached[0] > now and not (fresh_miss and cached[1] is None):
            return cached[1]
        try:
            entry: Entry | None = parse_marker(await self.store.get(f"{MARKERS}{asset_id}"))
        except NotFound:
            entry = None
        if len(self._entries) > 10000:
            self._entries.clear()
        self._entries[asset_id] = (now + (LOOKUP_TTL if entry else MISS_TTL), entry)
        return entry

    def forget(self, asset_id: str) -> None:
        self._entries.pop(asset_id, None)

    # --- the owner's heartbeat and everyone's sweep --------------------------------------

    async def run(self) -> None:
        """Heartbeats of this process's streams, and the sweep, until cancelled."""
        next_sweep = 0.0
        while True:
            try:
                await self.registry.heartbeat()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.sweep_every
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store away: try again at the next beat
                log.warning("live: directory sweep failed: %s", e)
            await asyncio.sleep(self.beat)

    async def sweep(self) -> list[str]:
        """Seal the streams whose owner is gone; returns their ids."""
        keys = await self.store.list(MARKERS)
        now = time.monotonic()
        present = set()
        sealed = []
        for key in keys:
            asset_id = key[len(MARKERS):]
            if not layout.is_valid_asset_id(asset_id) or self.registry.owns(asset_id):
                continue  # ours, or being created here: never judged by our own sweep
            present.add(asset_id)
            try:
                data = await self.store.get(key)
            except NotFound:
                continue
            seen = self._seen.get(asset_id)
            if seen is None or seen[0] != data:
                seen = self._seen[asset_id] = (data, now)
            entry = parse_marker(data)
            if not self._dead(entry, now - seen[1]):
                continue
            if await self._seal(asset_id, entry):
                sealed.append(asset_id)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return sealed

    def _dead(self, entry: Entry, unchanged_for: float) -> bool:
        if owner_gone(entry.owner):  # its pid is dead on this machine (or no owner at all)
            return True
        host, _, pid = entry.owner.rpartition(":")
        local_host = host == owner_id().rpartition(":")[0]
        if local_host and _zombie(pid):  # killed, not yet reaped by its parent
            return True
        return unchanged_for > (self.local_stale_after if local_host else self.stale_after)

    async def _seal(self, asset_id: str, entry: Entry) -> bool:
        if not await self.claims.claim(asset_id):
            return False  # another worker or replica is sealing it
        try:
            rec = await publish.read_record(self.store, asset_id)
            if rec is None or rec.get("state") != "live":
                await self.registry._unmark(asset_id)  # sealed or deleted meanwhile
                return False
            log.warning("live %s: its owner %s is gone; sealing it from the store", asset_id,
                        entry.owner)
            try:
                await self.registry.recover_one(rec)
            except Exception as e:  # noqa: BLE001 - one bad stream must not stop the sweep
                log.error("live %s: could not be sealed for its dead owner: %s", asset_id, e)
                return False
            self.sealed.append(asset_id)
            return True
        finally:
            self.forget(asset_id)
            self._seen.pop(asset_id, None)
            with contextlib.suppress(Exception):
                await self.claims.release(asset_id)


def _zombie(pid: str) -> bool:
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, ValueError, IndexError):
        return False


def describe(entry: Entry | None) -> dict[str, Any]:
    return {} if entry is None else {"owner": entry.owner, "url": entry.url, "beat": entry.beat}
