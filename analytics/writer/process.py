"""The analytics writer process (I/O): `python -m analytics.writer.process CONFIG_JSON`.

An origin process starts one (analytics.writer.link) and feeds it frames of events on its
stdin (analytics.writer.frames); here they go into a Recorder, whose thread classifies,
hashes and writes them. Being a process of its own, none of that shares an interpreter
lock with the event loop that serves: a writer thread in the serving process cost about
a sixth of its requests a second in bench.origin, although it only wrote a few thousand
rows a second (the loop kept waiting for the lock it had released around each socket
call).

Status lines go up stdout whenever the counters change (at most every STATUS_EVERY
seconds). The process ends when its stdin does (the origin closed it, or died): it
writes what is queued (at most the recorder's CLOSE_WAIT seconds), a last status, and exits.
SIGINT and SIGTERM are ignored: a Ctrl-C or a service manager's stop reaches the origin
too, which closes the pipe once its own in-flight responses are counted.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import BinaryIO

from analytics.events import Hit, Report
from analytics.writer.frames import FrameError, Status, read_frame
from analytics.writer.recorder import CLOSE_WAIT, Recorder
from settings import AnalyticsConfig

log = logging.getLogger("sori.analytics")

STATUS_EVERY = 0.02  # seconds between status lines at most (a report's flush waits on them)
IDLE_EVERY = 0.5  # seconds between looks once nothing changes
QUIET_POLLS = 50  # looks without a change before the idle pace


class Reporter:
    """Sends the recorder's counters up the pipe when they change."""

    def __init__(self, recorder: Recorder, out: BinaryIO) -> None:
        self.recorder = recorder
        self.out = out
        self.received = 0
        self._last: Status | None = None
        self._wake = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()

    def status(self) -> Status:
        r = self.recorder
        return Status(received=self.received, accepted=r.accepted, full=r.full,
                      settled=r.settled, written=r.written, dropped=r.dropped,
                      errors=r.errors, rejected=r.rejected, queued=r.queued(), down=r.down)

    def send(self, *, force: bool = False) -> bool:
        """Write the status if it changed (or `force`); whether it was written."""
        with self._lock:
            status = self.status()
            if status == self._last and not force:
                return False
            self._last = status
            try:
                self.out.write(status.line())
                self.out.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the origin is gone: nobody to tell
            return True

    def run(self) -> None:
        """Every STATUS_EVERY seconds while events flow (the writer's progress shows
        without a poke), every IDLE_EVERY once nothing changed for a second."""
        quiet = 0
        while not self._done.is_set():
            woke = self._wake.wait(STATUS_EVERY if quiet < QUIET_POLLS else IDLE_EVERY)
            self._wake.clear()
            quiet = 0 if self.send() or woke else quiet + 1

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._done.set()
        self._wake.set()


def serve(cfg: AnalyticsConfig, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Read frames until the end of `stdin`; the exit code."""
    recorder = Recorder(cfg)
    recorder.start()
    reporter = Reporter(recorder, stdout)
    thread = threading.Thread(target=reporter.run, name="sori-analytics-status", daemon=True)
    thread.start()
    code = 0
    try:
        while True:
            batch = read_frame(stdin)
            if batch is None:
                break
            hits, reports = batch
            for values in hits:
                recorder.submit(Hit(*values))
            for values in reports:
                recorder.submit_report(Report(*values))
            reporter.received += len(hits) + len(reports)
            reporter.poke()
    except (FrameError, TypeError) as e:
        log.error("analytics writer: unreadable input from the origin (%s); stopping", e)
        code = 1
    finally:
        # A database that is down would only make the wait longer: drop (and count) at once.
        recorder.close(0.5 if recorder.down else CLOSE_WAIT)
        reporter.stop()
        thread.join(1.0)
        reporter.send(force=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(args) != 1:
        print("usage: python -m analytics.writer.process CONFIG_JSON", file=sys.stderr)
        return 2
    cfg = AnalyticsConfig(**json.loads(args[0]))
    cfg.validate()
    return serve(cfg, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
