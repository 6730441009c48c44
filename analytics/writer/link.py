"""The origin's side of its analytics writer process (I/O, asyncio).

`submit()` and `submit_report()` take an event as a tuple (the field order of
`analytics.events.Hit` / `Report`) and append it to a list: that is all a request pays.
Every SEND_EVERY seconds, or once `batch_size` events wait, the list goes down the writer
process's stdin as one frame (analytics.writer.frames), written without waiting (the
event loop never blocks on the pipe). The process (analytics.writer.process) writes them
to the database and sends its counters back.

Bounded like the recorder: events wait here while the pipe is busy, at most `queue_size`
of them, and at most MAX_BUFFERED bytes wait in the pipe's write buffer; past either,
events are dropped and counted. A writer process that dies (killed, out of memory) is
started again after a pause (RESTART_AFTER, growing), and what it had not settled is
counted as dropped.

The counters read like the recorder's: `accepted` (queued for writing), `written`,
`dropped` (queue full here or there, lost with a process, dropped by the writer), `errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
import time
from typing import Any

from analytics.writer.frames import Status, encode
from settings import AnalyticsConfig

log = logging.getLogger("sori.analytics")

SEND_EVERY = 0.1  # seconds events wait here at most before going down the pipe
MAX_BUFFERED = 16 * 1024 * 1024  # bytes waiting in the pipe's buffer; past it, drops
RESTART_AFTER = 1.0  # seconds before a dead writer process is started again (doubling)
MAX_RESTART_AFTER = 30.0
CLOSE_WAIT = 5.0  # seconds the writer gets to write what is queued at shutdown
MODULE = "analytics.writer.process"


class WriterLink:
    def __init__(self, cfg: AnalyticsConfig) -> None:
        self.cfg = cfg
        self._hits: list[tuple[Any, ...]] = []
        self._reports: list[tuple[Any, ...]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._restart: asyncio.TimerHandle | None = None
        self._spawning: asyncio.Task[None] | None = None
        self._started = False
        self._restart_after = RESTART_AFTER
        self._closing = False
        self._changed = asyncio.Event()
        self._status = Status()  # the current process's counters
        self._base = Status()  # the sum of earlier processes' last counters
        self._offered = 0  # every submit
        self._sent = 0  # events written down the current process's pipe
        self._dropped_here = 0  # refused here (list or pipe full, no process)
        self._lost = 0  # sent to a process that died before settling them

    # --- the serving side -------------------------------------------------------------------

    def submit(self, hit: tuple[Any, ...]) -> bool:
        """Queue a hit (Hit's fields in order); False when it was dropped."""
        return self._offer(self._hits, hit)

    def submit_report(self, report: tuple[Any, ...]) -> bool:
        """Queue a CMCD report (Report's fields in order); False when it was dropped."""
        return self._offer(self._reports, report)

    def _offer(self, waiting: list[tuple[Any, ...]], item: tuple[Any, ...]) -> bool:
        self._offered += 1
        if len(self._hits) + len(self._reports) >= self.cfg.queue_size:
            self._dropped_here += 1
            return False
        waiting.append(item)
        self._schedule()
        return True

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SEND_EVERY, self.send)
        elif len(self._hits) + len(self._reports) >= self.cfg.batch_size:
            self.send()

    def send(self) -> None:
        """What waits here, down the pipe now (when there is a process to take it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._hits and not self._reports:
            return
        stdin = self._proc.stdin if self._proc is not None else None
        if stdin is None or stdin.is_closing():
            if self._proc is None and not self._closing:
                self._ensure_process()
                self._schedule()  # keep them while the process (re)starts
            return
        hits, reports = self._hits, self._reports
        self._hits, self._reports = [], []
        n = len(hits) + len(reports)
        if stdin.transport.get_write_buffer_size() > MAX_BUFFERED:
            self._dropped_here += n  # the writer is not reading: keep serving, count
            return
        try:
            stdin.write(encode(hits, reports))
        except Exception:  # a pipe closing under us: the process is going
            self._dropped_here += n
            return
        self._sent += n

    # --- counters ---------------------------------------------------------------------------

    @property
    def accepted(self) -> int:
        s, b = self._status, self._base
        return self._offered - self._dropped_here - s.full - b.full

    @property
    def written(self) -> int:
        return self._status.written + self._base.written

    @property
    def dropped(self) -> int:
        return self._dropped_here + self._lost + self._status.dropped + self._base.dropped

    @property
    def errors(self) -> int:
        return self._status.errors + self._base.errors

    @property
    def down(self) -> bool:
        return self._status.down

    def queued(self) -> int:
        """Events not written yet: here, in the pipe, in the writer's queue."""
        return (len(self._hits) + len(self._reports) + self._sent - self._status.received
                + self._status.queued)

    def counts(self) -> dict[str, int]:
        return {"accepted": self.accepted, "written": self.written, "dropped": self.dropped,
                "errors": self.errors, "rejected": self._status.rejected + self._base.rejected}

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Ready to take events. The writer process starts with the first of them (an
        origin that serves no media, as many tests' do, never starts one). Never raises: a
        process that cannot start shows as drops, and another start is tried later."""
        self._closing = False
        self._started = True

    def _ensure_process(self) -> None:
        """Start the writer process unless it runs, is starting or waits for a restart."""
        if (self._started and not self._closing and self._proc is None
                and self._spawning is None and self._restart is None):
            self._spawning = asyncio.get_running_loop().create_task(self._spawn())

    async def _spawn(self) -> None:
        try:
            config = json.dumps(dataclasses.asdict(self.cfg))
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", MODULE, config, stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE)
            except OSError as e:
                log.error("analytics: cannot start the writer process (%s)", e)
                self._later()
                return
            self._proc = proc
            self._sent = 0
            self._status = Status()
            self._reader = asyncio.get_running_loop().create_task(self._read(proc))
        finally:
            self._spawning = None
        self.send()

    async def _started_process(self, wait: float) -> None:
        """Start the writer process for what waits here, and wait (at most `wait` s)."""
        self._ensure_process()
        spawning = self._spawning
        if spawning is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await asyncio.shield(spawning)

    def _later(self) -> None:
        if self._closing or self._restart is not None:
            return

        def due() -> None:
            self._restart = None
            self._ensure_process()

        self._restart = asyncio.get_running_loop().call_later(self._restart_after, due)
        self._restart_after = min(MAX_RESTART_AFTER, self._restart_after * 2)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        started = time.monotonic()
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            try:
                self._status = Status.parse(line)
            except (ValueError, TypeError):
                log.warning("analytics: unreadable status from the writer: %r", line[:200])
                continue
            self._changed.set()
        code = await proc.wait()
        # What it was sent and never settled is lost with it; its counters join the base.
        s = self._status
        self._lost += max(0, self._sent - s.settled)
        self._base = Status(**{f.name: (getattr(self._base, f.name) + getattr(s, f.name)
                                        if f.name != "down" else False)
                               for f in dataclasses.fields(Status)})
        self._status = Status()
        self._sent = 0
        self._proc = None
        self._changed.set()
        if not self._closing:
            log.error("analytics: the writer process exited (code %s); starting another",
                      code)
            if time.monotonic() - started > MAX_RESTART_AFTER:
                self._restart_after = RESTART_AFTER
            self._later()

    async def flush(self, wait: float = 30.0) -> bool:
        """Wait until every event submitted before this call is written, dropped or
        rejected; False when `wait` seconds passed first (the database down, say)."""
        deadline = time.monotonic() + wait
        if (self._hits or self._reports) and self._proc is None:
            await self._started_process(wait)
        self.send()
        target_sent = self._sent
        proc = self._proc
        while proc is not None and self._proc is proc and self._status.settled < target_sent:
            if self._status.down:
                return False  # the database is down: waiting would only delay the caller
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._changed.wait()
        return not self._hits and not self._reports

    async def close(self, wait: float = CLOSE_WAIT) -> None:
        """Send what waits, let the process write it (at most `wait` seconds) and end."""
        # Started for what waits here, or one starting already: close it, not leave it.
        if ((self._hits or self._reports) and self._proc is None) or self._spawning is not None:
            await self._started_process(wait)
        self.send()
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dropped_here += len(self._hits) + len(self._reports)
        self._hits, self._reports = [], []
        proc, reader = self._proc, self._reader
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the end of its input: it writes what it has and exits
        try:
            async with asyncio.timeout(wait + 2.0):
                await proc.wait()
        except TimeoutError:
            log.warning("analytics: the writer process did not finish in time; killed")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader
