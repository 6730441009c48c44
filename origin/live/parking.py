"""Blocking playlist requests parked until their part lands, answered all at once.

A blocking reload (`_HLS_msn`/`_HLS_part`, RFC 8216bis §6.2.5.2) that asks for a part not
there yet is parked here, under (rung, msn, part), instead of waiting on the stream's
change event: one watcher per stream wakes when a part lands and releases only the
requests the part satisfies. For each released group origin.live.serving renders the
answer once per variant (gzip or not, delta update or not, CORS origin): the status
line, the header block and the body as one `bytes` object, the way origin/fast_lane.py
answers from memory; then it writes those bytes to every parked connection in one loop,
before any of the parked handlers runs again. Thousands of listeners cost one
`transport.write` each at the moment that matters (bench/live.py, "listeners waiting").

The request is still an ordinary aiohttp request: it was parsed, routed and checked by
the usual path, its handler stays suspended while parked, so aiohttp answers nothing
else on that connection before it (pipelined requests keep their order), and once the
bytes are out the handler returns a `Sent` response that aiohttp finishes without
writing, while origin.app's `edge` counts it and logs it as it does every response.
A request that cannot take prepared bytes (HEAD, HTTP/1.0, `Connection: close`) or any
release when the stream has ended resumes the ordinary path. A client that leaves while
parked is skipped at the release (its transport is closing) and its handler returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

if TYPE_CHECKING:
    from packager.live.stream import LiveStream

Key = tuple[int, int, int | None]  # (rung index, msn, part)

GONE = -1  # the client left before its part landed
TIMED_OUT = -2  # no part within the deadline
ORDINARY = -3  # answer through the ordinary path (the stream ended, or no prepared bytes)


class Waiter:
    """One parked request; `future` gets the body bytes written for it (or a code)."""

    __slots__ = ("request", "transport", "variant", "direct", "future", "timer")

    def __init__(self, request: web.Request, variant: tuple[Any, ...], direct: bool,
                 future: asyncio.Future[int]) -> None:
        self.request = request
        self.transport = request.transport  # closing once the client has gone
        self.variant = variant  # what, besides the part, decides the answer's bytes
        self.direct = direct  # the answer may be written as prepared bytes
        self.future = future
        self.timer: asyncio.TimerHandle | None = None

    def settle(self, result: int) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.future.done():
            self.future.set_result(result)


# Given the stream, the rung index and the waiters the part satisfies: answer them.
Release = Callable[["LiveStream", int, list[Waiter]], None]


class StreamLot:
    """The parked requests of one stream, by (rung, msn, part), with its watcher."""

    def __init__(self, stream: LiveStream, release: Release,
                 on_idle: Callable[[StreamLot], None]) -> None:
        self.stream = stream
        self.release = release
        self.on_idle = on_idle
        self.parked: dict[Key, dict[Waiter, None]] = {}
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    def park(self, request: web.Request, key: Key, variant: tuple[Any, ...], direct: bool,
             deadline: float) -> Waiter:
        """Park `request` until part `key` lands (or `deadline`, loop time)."""
        loop = asyncio.get_running_loop()
        waiter = Waiter(request, variant, direct, loop.create_future())
        self.parked.setdefault(key, {})[waiter] = None
        self.count += 1
        waiter.timer = loop.call_at(deadline, self._expire, key, waiter)
        if self._task is None:
            self._task = loop.create_task(self._watch(), name="sori-live-parking")
        return waiter

    def drop(self, key: Key, waiter: Waiter, result: int) -> None:
        group = self.parked.get(key)
        if group is not None and group.pop(waiter, 0) is None:
            self.count -= 1
            if not group:
                del self.parked[key]
        waiter.settle(result)

    def _expire(self, key: Key, waiter: Waiter) -> None:
        waiter.timer = None
        self.drop(key, waiter, TIMED_OUT)

    async def _watch(self) -> None:
        stream = self.stream
        try:
            while self.parked:
                await stream.wait_change(3 * stream.plan.target_duration)
                self.dispatch()
        finally:
            self._task = None
            if not self.parked:
                self.on_idle(self)
            else:  # cancelled (shutdown): let every handler finish the ordinary way
                self._release_all(ORDINARY)

    def dispatch(self) -> None:
        """Release every group whose part is now in the playlist."""
        stream = self.stream
        if stream.ended.is_set():
            self._release_all(ORDINARY)
            return
        for key in [k for k in self.parked
                    if stream.rungs_state[k[0]].has(k[1], k[2])]:
            group = self.parked.pop(key)
            self.count -= len(group)
            self.release(stream, key[0], list(group))

    def _release_all(self, result: int) -> None:
        groups = list(self.parked.values())
        self.parked.clear()
        self.count = 0
        for group in groups:
            for waiter in group:
                waiter.settle(result)


class Sent(web.StreamResponse):
    """A 200 whose bytes are already on the wire: aiohttp finishes it without writing
    (and keeps the connection, as it would for the same response it wrote itself)."""

    def __init__(self) -> None:
        super().__init__(status=200)

    @property
    def keep_alive(self) -> bool:
        return True

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None
