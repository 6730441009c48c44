"""The bounded queue between serving and the database, and its one writer thread (I/O).

`submit()` is what a request handler calls: an append to a deque under the GIL, O(1),
never blocking and never raising. Past `queue_size` waiting events it drops the event and
counts it: a slow or dead database costs analytics, never serving. The writer thread
takes up to `batch_size` events at a time, turns each into a row (User-Agent class,
country, the salted client key, media span, parsed CMCD: the raw address goes no further)
and inserts the batch in one transaction. When the database is down or busy it keeps the
batch and tries again with a growing pause (up to MAX_BACKOFF); events keep queueing
meanwhile and the queue's bound does the dropping. Every ten minutes (and at start) it
rolls up closed days, applies the retention and expires salts.

In the origin this object lives in a process of its own (analytics.writer.process), so
its work never shares an interpreter lock with serving. `sori analytics import` uses the
same object synchronously: `put()` waits for room
instead of dropping, `flush()` waits until everything queued is written.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable

from analytics import cmcd, geo, privacy, spans, useragents
from analytics.counting import EventRow, HitRow
from analytics.db import Database, DatabaseDown, open_database
from analytics.events import AssetInfo, Hit, Report
from analytics.rollup import maintain, shift, utc_day
from manifests import layout
from settings import AnalyticsConfig

log = logging.getLogger("sori.analytics")

MAINTAIN_EVERY = 600.0  # seconds between roll-up / retention passes
MAX_BACKOFF = 5.0  # seconds between attempts while the database is down
MAX_ATTEMPTS_ALIVE = 3  # a batch the reachable database refuses this often is dropped
CLOSE_WAIT = 5.0  # close(flush=True) waits at most this long
WHO_ENTRIES = 50_000  # (day, address, User-Agent) -> client facts kept by the writer
SPAN_ENTRIES = 50_000  # (path, asset facts) -> media span kept by the writer
_MAX_FIELD = 512  # characters kept of an asset id, a path, a sid, a User-Agent name

Item = Hit | Report


class Recorder:
    def __init__(self, cfg: AnalyticsConfig, *, database: Database | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self._db = database
        self._queue: collections.deque[Item] = collections.deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._busy = False  # the writer holds a batch it has not written yet
        self._salts: dict[str, str] = {}  # day -> salt, as the database has it
        self._salt_used: dict[str, float] = {}  # day -> when a row last needed its salt
        self._days: dict[int, str] = {}  # UNIX day number -> "YYYY-MM-DD"
        self._who: dict[tuple[str, str, str], tuple[str, str, str | None, str | None,
                                                    str | None]] = {}
        self._spans: dict[tuple[str, int, bool, int],
                          tuple[AssetInfo | None, spans.Span | None, str | None]] = {}
        self._accepted = 0  # by the submitting thread(s)
        self._dropped_full = 0  # by the submitting thread(s)
        self._written = 0  # by the writer
        self._dropped_writer = 0  # by the writer
        self._errors = 0  # by the writer: failed attempts, unreadable events
        self._rejected = 0  # by the writer: reports with nothing countable in them
        self._dropped_close = 0  # by close(): still queued when the wait was over
        self._db_lock = threading.Lock()
        self._last_maintain = 0.0
        self.down = False  # the last attempt found the database unreachable

    # --- the serving side ---------------------------------------------------------------

    def submit(self, hit: Hit) -> bool:
        """Queue a response for counting; False if it was dropped (queue full)."""
        return self._offer(hit)

    def submit_report(self, report: Report) -> bool:
        """Queue a CMCD report; False if it was dropped (queue full)."""
        return self._offer(report)

    def _offer(self, item: Item) -> bool:
        try:
            if len(self._queue) >= self.cfg.queue_size or self._stop:
                self._dropped_full += 1
                return False
            self._queue.append(item)
            self._accepted += 1
            if not self._wake.is_set():
                self._wake.set()
            return True
        except Exception:  # never into the request
            return False

    @property
    def accepted(self) -> int:
        return self._accepted

    @property
    def written(self) -> int:
        return self._written

    @property
    def dropped(self) -> int:
        return self._dropped_full + self._dropped_writer + self._dropped_close

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def rejected(self) -> int:
        """CMCD reports with nothing countable in them."""
        return self._rejected

    @property
    def full(self) -> int:
        """Events refused because the queue was full (part of `dropped`)."""
        return self._dropped_full

    @property
    def settled(self) -> int:
        """Events offered that nothing more will happen to: written, dropped or rejected."""
        return self._processed() + self._dropped_full

    def queued(self) -> int:
        return len(self._queue)

    def counts(self) -> dict[str, int]:
        """accepted: queued by submit/put; written: stored; dropped: lost (queue full, the
        database down past the bound, closing, unreadable); errors: failed write attempts
        and unreadable events; rejected: CMCD reports with no valid key or no asset."""
        return {"accepted": self.accepted, "written": self.written, "dropped": self.dropped,
                "errors": self.errors, "rejected": self._rejected}

    @property
    def database(self) -> Database:
        """The writer's Database (not connected until used)."""
        return self._database()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="sori-analytics-writer",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float = CLOSE_WAIT, *, flush: bool = True) -> None:
        """Stop the writer: with `flush`, after it wrote what is queued or `timeout`
        seconds passed (what is left then is counted as dropped)."""
        if flush:
            self.flush(timeout)
        self._stop = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=max(0.5, timeout))
        self._dropped_close += len(self._take_all())
        if self._db is not None and (thread is None or not thread.is_alive()):
            self._db.close()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event accepted before this call is written, dropped or
        rejected; False on timeout (the database down, say). Later events do not
        prolong the wait."""
        target = self._accepted
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self._processed() < target:
            if time.monotonic() >= deadline or self._thread is None:
                return self._processed() >= target
            time.sleep(0.005)
        return True

    def _processed(self) -> int:
        return self._written + self._dropped_writer + self._dropped_close + self._rejected

    def put(self, item: Item, timeout: float = 60.0) -> bool:
        """For a log import: queue, waiting (up to `timeout`) for room instead of dropping."""
        deadline = time.monotonic() + timeout
        while len(self._queue) >= self.cfg.queue_size:
            if time.monotonic() >= deadline or self._thread is None:
                self._dropped_full += 1
                return False
            time.sleep(0.005)
        return self._offer(item)

    # --- the writer ---------------------------------------------------------------------

    def _database(self) -> Database:
        with self._db_lock:
            if self._db is None:
                self._db = open_database(self.cfg.database)
            return self._db

    def _run(self) -> None:
        backoff = 0.0
        batch: list[Item] = []
        attempts = 0
        while True:
            if not batch:
                self._busy = False
                self._maybe_maintain()
                if not self._queue:
                    if self._stop:
                        return
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                self._busy = True
                batch = self._take()
                attempts = 0
            try:
                rejected, failed = self._write(batch)
            except DatabaseDown as exc:
                self._errors += 1
                if not self.down:
                    log.warning("analytics: database unavailable (%s); events wait in the "
                                "queue, dropped past %d", exc, self.cfg.queue_size)
                self.down = True
                backoff = min(MAX_BACKOFF, max(0.1, backoff * 2))
                if self._stop:  # closing: no more waiting, no more attempts
                    self._dropped_writer += len(batch) + len(self._take_all())
                    self._busy = False
                    return
                self._wake.wait(backoff)
                self._wake.clear()
                continue
            except Exception:
                self._errors += 1
                attempts += 1
                log.exception("analytics: writing %d events failed", len(batch))
                if attempts >= MAX_ATTEMPTS_ALIVE:
                    self._dropped_writer += len(batch)
                    batch = []
                continue
            if self.down:
                log.info("analytics: database reachable again")
            self.down = False
            backoff = 0.0
            self._errors += failed
            self._dropped_writer += failed
            self._rejected += rejected
            self._written += len(batch) - rejected - failed
            batch = []

    def _take(self) -> list[Item]:
        batch: list[Item] = []
        try:
            while len(batch) < self.cfg.batch_size:
                batch.append(self._queue.popleft())
        except IndexError:  # empty (close() may have cleared it meanwhile)
            pass
        return batch

    def _take_all(self) -> list[Item]:
        out: list[Item] = []
        while True:
            got = self._take()
            if not got:
                return out
            out += got

    def _maybe_maintain(self) -> None:
        now = time.monotonic()
        if self._last_maintain and now - self._last_maintain < MAINTAIN_EVERY:
            return
        self._last_maintain = now
        self._forget_salts()
        try:
            maintain(self._database(), self.cfg.retention_days, self.clock())
        except DatabaseDown:
            self._last_maintain = now - MAINTAIN_EVERY + 30.0  # again in half a minute
        except Exception:
            self._errors += 1
            log.exception("analytics: roll-up / retention pass failed")

    def _write(self, batch: list[Item]) -> tuple[int, int]:
        """Insert the batch; (rejected, failed) events of it were not stored. Counters are
        left to the caller: a batch retried after DatabaseDown must not count twice."""
        db = self._database()
        hits: list[HitRow] = []
        events: list[EventRow] = []
        failed = rejected = 0
        for item in batch:
            try:
                if isinstance(item, Hit):
                    hits.append(self.hit_row(item))
                else:
                    row = self.event_row(item)
                    if row is not None:
                        events.append(row)
                    else:
                        rejected += 1
            except DatabaseDown:
                raise
            except Exception:  # one unreadable event is not the batch's problem
                failed += 1
                log.debug("analytics: event skipped", exc_info=True)
        if hits or events:
            db.insert(hits, events)
        return rejected, failed

    def _salt(self, day: str) -> str:
        salt = self._salts.get(day)
        if salt is None:
            salt = self._database().salt(day, privacy.new_salt())
            self._salts[day] = salt
        self._salt_used[day] = time.monotonic()
        return salt

    def _forget_salts(self) -> None:
        """Salts of days before yesterday leave memory too once no row needed them for a
        while (a log import of an old day keeps its salt while it runs: its clients stay
        one client each)."""
        yesterday = shift(utc_day(self.clock()), -1)
        idle = time.monotonic() - MAINTAIN_EVERY
        for day in [d for d in self._salts if d < yesterday and self._salt_used[d] < idle]:
            del self._salts[day]
            del self._salt_used[day]
            # Addresses of that day leave memory with its salt: nothing can link them now.
            self._who = {k: v for k, v in self._who.items() if k[0] != day}

    # --- event -> row (no address past this point) ------------------------------------

    def hit_row(self, hit: Hit) -> HitRow:
        """The stored row of a hit. What depends only on the client (its key, agent class,
        country) is kept per (day, address, User-Agent), and a segment's span per (path,
        asset facts): one listener's hundreds of requests, or a load test's millions, cost
        a few dictionary lookups each instead of an HMAC, a regex pass and a parse."""
        ts = float(hit.ts)
        day_no = int(ts // 86400.0)
        day = self._days.get(day_no)
        if day is None:
            day = self._days[day_no] = utc_day(ts)
        ua = hit.ua
        who_key = (day, hit.ip, ua)
        who = self._who.get(who_key)
        if who is None:
            who = self._identify(day, hit.ip, ua)
            if len(self._who) >= WHO_ENTRIES:
                self._who.clear()
            self._who[who_key] = who
        client, kind, app, device, country = who
        rel, info, status, nbytes = hit.rel, hit.info, int(hit.status), max(0, int(hit.nbytes))
        if rel == spans.DOWNLOAD or hit.range is not None:
            span = spans.span_of(rel, status, nbytes, hit.range, info)
            rendition = spans.rendition_of(rel)
        else:
            span_key = (rel, status, nbytes > 0, id(info))
            cached = self._spans.get(span_key)
            if cached is None or cached[0] is not info:
                cached = (info, spans.span_of(rel, status, nbytes, None, info),
                          spans.rendition_of(rel))
                if len(self._spans) >= SPAN_ENTRIES:
                    self._spans.clear()
                self._spans[span_key] = cached
            span, rendition = cached[1], cached[2]
        data = cmcd.parse(hit.cmcd) if hit.cmcd else None
        sid = data.get("sid") if data else None
        return HitRow(day, ts, hit.asset[:_MAX_FIELD], client, kind, app, device, country,
                      hit.method[:16].upper(), status, nbytes, rendition,
                      span.t0 if span else None, span.t1 if span else None,
                      float(info.duration) if info else 0.0,
                      sid[:_MAX_FIELD] if isinstance(sid, str) else None,
                      json.dumps(data, separators=(",", ":")) if data else None)

    def _identify(self, day: str, ip: str, ua: str) -> tuple[str, str, str | None, str | None,
                                                             str | None]:
        ua = ua[:useragents.MAX_UA]
        agent = useragents.classify(ua)
        return (privacy.client_key(self._salt(day), ip, ua), agent.kind, agent.name,
                agent.device, geo.country(ip))

    def event_row(self, report: Report) -> EventRow | None:
        data = cmcd.parse(report.data)
        if not data:
            return None
        asset = report.asset or data.get("cid")
        if not isinstance(asset, str) or not layout.is_valid_asset_id(asset):
            return None
        day = utc_day(report.ts)
        ua = report.ua[:useragents.MAX_UA]
        sid = data.get("sid")
        return EventRow(day=day, ts=float(report.ts), asset=asset,
                        client=privacy.client_key(self._salt(day), report.ip, ua),
                        kind=useragents.classify(ua).kind,
                        sid=sid if isinstance(sid, str) else None,
                        data=json.dumps(data, separators=(",", ":")))


