"""A bounded in-memory cache of small objects, and single-flight loading.

`ObjectCache` keeps values by total size (bytes) in least-recently-used order,
each with an optional time to live; `SingleFlight` makes concurrent misses on
one key share a single load, so a burst of players asking for the same new
segment costs the store one read. Both are loop-local (no locks needed: the
event loop is single-threaded) and generic over what they hold.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")
T = TypeVar("T")


class ObjectCache(Generic[V]):
    """LRU by bytes. Objects larger than `max_object` are never admitted."""

    def __init__(self, max_bytes: int, max_object: int) -> None:
        self.max_bytes = max_bytes
        self.max_object = min(max_object, max_bytes)
        self.size = 0
        # key -> (value, size, expires at (monotonic) or None)
        self._items: OrderedDict[str, tuple[V, int, float | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def admits(self, size: int) -> bool:
        return 0 <= size <= self.max_object and self.max_bytes > 0

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires = item[2]
        if expires is not None and time.monotonic() >= expires:
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: str, value: V, size: int, ttl: float | None = None) -> bool:
        """Keep `value`; returns False when it is too large to keep."""
        if not self.admits(size):
            return False
        if key in self._items:
            self._drop(key)
        expires = None if ttl is None else time.monotonic() + ttl
        self._items[key] = (value, size, expires)
        self.size += size
        while self.size > self.max_bytes:
            oldest = next(iter(self._items))
            self._drop(oldest)
        return True

    def discard(self, key: str) -> None:
        if key in self._items:
            self._drop(key)

    def discard_prefix(self, prefix: str) -> int:
        """Drop every key starting with `prefix`; how many there were."""
        keys = [k for k in self._items if k.startswith(prefix)]
        for key in keys:
            self._drop(key)
        return len(keys)

    def clear(self) -> None:
        self._items.clear()
        self.size = 0

    def _drop(self, key: str) -> None:
        _value, size, _expires = self._items.pop(key)
        self.size -= size


class LruDict(Generic[V]):
    """A dict bounded by entry count, for small values such as stat results."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        if self.max_entries <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)

    def discard_prefix(self, prefix: str) -> None:
        for key in [k for k in self._items if k.startswith(prefix)]:
            del self._items[key]


class SingleFlight(Generic[T]):
    """At most one load in flight per key; every concurrent caller gets its result.

    The load runs as its own task, so a caller that goes away (client
    disconnect cancels its handler) does not cancel the load for the others.
    A failed load is not remembered: the next caller tries again.
    """

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._inflight)

    def __contains__(self, key: str) -> bool:
        return key in self._inflight

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(load())
            self._inflight[key] = fut
            fut.add_done_callback(functools.partial(self._done, key))
        return await asyncio.shield(fut)

    def _done(self, key: str, fut: asyncio.Future[T]) -> None:
        if self._inflight.get(key) is fut:
            del self._inflight[key]
        if not fut.cancelled():
            fut.exception()  # mark retrieved: waiters re-raise it themselves
