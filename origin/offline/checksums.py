"""Size and CRC-32 of the store objects a bundle carries, computed once and kept.

A ZIP header states each member's CRC-32 before its bytes, and a bundle's whole layout
is fixed before its first byte, so the CRC of every member must be known when a request
arrives. Reading a two-hour file to learn it on every request would cost what serving
it costs; instead it is computed once per immutable object (everything under
`{id}/v/{version}/` is written once and never changes) and kept twice:

- in this process (an LRU), so a repeat request costs no store round trip;
- as a small sidecar object in the same immutable version directory,
  `{id}/v/{version}/offline/{name}.crc32.json`, so other workers, other origins on the
  same store, restarts and `sori bundle` find it too. It goes when its version goes
  (re-packaging prunes old versions, DELETE removes the asset's prefix).

A sidecar is written only after its figures were read from the bytes themselves, and a
store that refuses writes only costs the next process one more read.

A rendition's track (?rendition=) is its init segment followed by its media segments:
the sidecar also keeps each object's size, so a repeat request does not stat hundreds
of segments.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from manifests import layout
from origin.http.object_cache import LruDict, SingleFlight
from storage.base import Store
from storage.errors import NotFound, StoreError

log = logging.getLogger("sori.offline")

SIDECAR_DIR = "offline"
ENTRIES = 8192
_SEGMENT = re.compile(r"seg_([0-9]{5,})\.m4s")  # whole segments; parts are seg_N.i.m4s


@dataclass(frozen=True, slots=True)
class Sum:
    """The concatenation of `objects` ((key, size) in order): its size and CRC-32."""

    objects: tuple[tuple[str, int], ...]
    crc32: int

    @property
    def size(self) -> int:
        return sum(size for _key, size in self.objects)


def version_prefix(key: str) -> str | None:
    """`{id}/v/{version}/` of a key under an immutable version directory, else None."""
    asset_id, _, rel = key.partition("/")
    if not layout.is_immutable(rel):
        return None
    parts = rel.split("/")
    return f"{asset_id}/{parts[0]}/{parts[1]}/"


def sidecar_key(prefix: str, name: str) -> str:
    """Where the figures of `name` (a path under the version directory) are kept."""
    return f"{prefix}{SIDECAR_DIR}/{name.replace('/', '.')}.crc32.json"


class Checksums:
    """CRC-32s of immutable objects and tracks, for every bundle of one process."""

    def __init__(self, store: Store, *, write_sidecars: bool = True,
                 entries: int = ENTRIES) -> None:
        self.store = store
        self.write_sidecars = write_sidecars
        self._known: LruDict[Sum] = LruDict(entries)
        self._flight: SingleFlight[Sum] = SingleFlight()
        self.computed = 0  # objects whose bytes were read to learn their CRC (for tests)

    async def of_object(self, key: str) -> Sum:
        """The figures of one immutable object. Raises NotFound when it is absent."""
        prefix = version_prefix(key)
        if prefix is None:
            raise ValueError(f"{key!r} is not under an immutable version directory")
        side = sidecar_key(prefix, key[len(prefix):])
        return await self._get(side, lambda: self._compute((key,)))

    async def of_track(self, prefix: str, rendition: str) -> Sum:
        """The figures of a rendition's whole track: init segment, then every media
        segment in number order. Raises NotFound when the rendition has no segments."""
        side = sidecar_key(prefix, f"{rendition}.track")

        async def compute() -> Sum:
            rdir = f"{prefix}{rendition}/"
            numbered = []
            for key in await self.store.list(rdir):
                m = _SEGMENT.fullmatch(key[len(rdir):])
                if m is not None:
                    numbered.append((int(m.group(1)), key))
            if not numbered:
                raise NotFound(f"rendition {rendition!r} has no segments under {rdir!r}")
            keys = (rdir + layout.INIT, *(k for _n, k in sorted(numbered)))
            return await self._compute(keys)

        return await self._get(side, compute)

    async def _get(self, side: str, compute: Callable[[], Awaitable[Sum]]) -> Sum:
        known = self._known.get(side)
        if known is not None:
            return known

        async def load() -> Sum:
            found = await self._read_sidecar(side)
            if found is None:
                found = await compute()
                await self._write_sidecar(side, found)
            self._known.put(side, found)
            return found

        return await self._flight.run(side, load)

    async def _compute(self, keys: tuple[str, ...]) -> Sum:
        crc = 0
        objects = []
        for key in keys:
            size = 0
            async for chunk in self.store.read(key):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
            objects.append((key, size))
            self.computed += 1
        return Sum(tuple(objects), crc)

    async def _read_sidecar(self, side: str) -> Sum | None:
        try:
            doc = json.loads(await self.store.get(side))
            objects = tuple((str(k), int(n)) for k, n in doc["objects"])
            crc = int(doc["crc32"])
        except NotFound:
            return None
        except (ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable checksum sidecar %s: %s", side, e)
            return None
        # Only figures of objects in the sidecar's own version directory are believed.
        home = side[:side.rindex(f"{SIDECAR_DIR}/")]
        if not objects or not 0 <= crc <= 0xFFFFFFFF or any(
                n < 0 or not k.startswith(home) for k, n in objects):
            log.warning("ignoring checksum sidecar %s: not about its own version", side)
            return None
        return Sum(objects, crc)

    async def _write_sidecar(self, side: str, found: Sum) -> None:
        if not self.write_sidecars:
            return
        doc = {"crc32": found.crc32, "objects": [list(o) for o in found.objects]}
        try:
            await self.store.put_bytes(side, json.dumps(doc).encode(), "application/json")
        except StoreError as e:
            log.warning("could not keep checksum sidecar %s: %s", side, e)
