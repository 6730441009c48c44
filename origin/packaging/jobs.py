"""Background packaging jobs: an upload becomes a job, at most `job_concurrency` run at once.

    manager = JobManager(store, cfg.packager, concurrency=2, registry=registry)
    job = manager.submit(upload)          # queued at once, runs when a slot frees
    await manager.wait(job, seen_version) # returns when the job changed (for SSE)

JOB, as the API shows it: `{"id", "asset", "state": "queued"|"running"|"done"|"failed",
"progress": 0..1, "error": null|"..."}` plus `phase`, `created`, `started`, `finished`.

A job runs in the process that received the upload and lives in its memory. With a
board (origin.packaging.job_board: files in the upload directory) every change is also written
down, so that the other workers of the origin answer `GET /v1/jobs/{id}` and its events
for it (RemoteJob), and an asset is claimed there while it is packaged, so that no two
workers package one asset at once. A restart cancels what was running, which publishes
nothing; such a job then reads as failed. The asset record in the store stays the only
source of truth about assets. The last RETAIN finished jobs are kept for
`GET /v1/jobs/{id}`; older ones are dropped. Work that outgrows one machine belongs on a
real queue (DESIGN decision 10).

Every job removes its upload directory when it ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from origin.packaging.job_board import JobBoard, Snapshot
from packager.errors import InvalidInput, PackagerError
from packager.pipeline import package
from packager.record import now_rfc3339
from storage.base import Store
from storage.errors import StoreError

if TYPE_CHECKING:
    from origin.packaging.uploads import Upload
    from settings import PackagerConfig

log = logging.getLogger("sori.jobs")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)
RETAIN = 1000  # finished jobs kept in memory
WRITE_EVERY = 0.25  # seconds between progress-only writes to the board
POLL = 0.25  # seconds between looks at the board for a job another worker runs
_RTF_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


@dataclass(eq=False)
class Job:
    id: str
    asset: str
    state: str = QUEUED
    progress: float = 0.0
    phase: str = QUEUED
    error: str | None = None
    created: str = field(default_factory=now_rfc3339)
    started: str | None = None
    finished: str | None = None
    version: int = 0  # bumped on every visible change
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _on_change: Callable[[Job], None] | None = field(default=None, repr=False)
    # The board's copy (JobManager._write): the phase last written, when, and a pending write.
    _board_phase: str = field(default="", repr=False)
    _board_at: float | None = field(default=None, repr=False)
    _board_later: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def ended(self) -> bool:
        return self.state in (DONE, FAILED)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "asset": self.asset, "state": self.state,
                "progress": self.progress, "phase": self.phase, "error": self.error,
                "created": self.created, "started": self.started, "finished": self.finished}

    def _update(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self.version += 1
        # Wake every waiter and give the next ones a fresh event.
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        if self._on_change is not None:
            self._on_change(self)


class RemoteJob:
    """A job another worker runs, as it last wrote it on the board (read-only)."""

    def __init__(self, board: JobBoard, snapshot: Snapshot) -> None:
        self._board = board
        self._apply(snapshot)

    def _apply(self, snapshot: Snapshot) -> None:
        self._json = snapshot.job
        self.version = snapshot.version
        self.id = str(snapshot.job.get("id", ""))
        self.asset = str(snapshot.job.get("asset", ""))
        self.state = str(snapshot.job.get("state", ""))

    @property
    def ended(self) -> bool:
        return self.state in (DONE, FAILED)

    def to_json(self) -> dict[str, Any]:
        return dict(self._json)

    def refresh(self) -> None:
        snapshot = self._board.read(self.id)
        if snapshot is not None and snapshot.version > self.version:
            self._apply(snapshot)


class AssetBusy(Exception):
    """The asset is being packaged by a job that has not ended."""

    def __init__(self, asset_id: str, job_id: str) -> None:
        super().__init__(f"asset {asset_id!r} is being packaged by job {job_id} "
                         f"(/v1/jobs/{job_id}); retry when it has ended")
        self.asset_id = asset_id
        self.job_id = job_id


class JobMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.jobs = Gauge("sori_jobs", "Packaging jobs held in memory, by state", ["state"],
                          registry=registry)
        self.finished = Counter("sori_jobs_finished", "Packaging jobs that ended, by state",
                                ["state"], registry=registry)
        self.realtime_factor = Histogram(
            "sori_packaging_realtime_factor",
            "Seconds of media packaged per second of wall time, per job",
            buckets=_RTF_BUCKETS, registry=registry)


class JobManager:
    def __init__(self, store: Store, cfg: PackagerConfig, *, concurrency: int,
                 registry: CollectorRegistry | None = None, retain: int = RETAIN,
                 board: JobBoard | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.retain = retain
        self.board = board
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self.metrics = JobMetrics(registry)
        for state in STATES:
            self.metrics.jobs.labels(state).set_function(self._counter(state))

    # --- queries --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | RemoteJob | None:
        """The job, from this process's memory or else from the board."""
        job = self._jobs.get(job_id)
        if job is not None or self.board is None:
            return job
        snapshot = self.board.read(job_id)
        return RemoteJob(self.board, snapshot) if snapshot is not None else None

    def active_for(self, asset_id: str) -> str | None:
        """The id of the queued or running job packaging `asset_id`, if any (in this
        process or, with a board, in another one)."""
        for job in self._jobs.values():
            if job.asset == asset_id and not job.ended:
                return job.id
        return self.board.holder(asset_id) if self.board is not None else None

    def _counter(self, state: str) -> Callable[[], float]:
        return lambda: self._count(state)

    def _count(self, state: str) -> int:
        return sum(1 for j in self._jobs.values() if j.state == state)

    async def wait(self, job: Job | RemoteJob, seen_version: int, within: float | None) -> bool:
        """Return True as soon as `job.version > seen_version` (at once if it already
        is), False after `within` seconds without a change."""
        if job.version > seen_version:
            return True
        if isinstance(job, RemoteJob):
            deadline = None if within is None else time.monotonic() + within
            while deadline is None or time.monotonic() < deadline:
                await asyncio.sleep(POLL if deadline is None
                                    else max(0.0, min(POLL, deadline - time.monotonic())))
                await asyncio.to_thread(job.refresh)
                if job.version > seen_version:
                    return True
            return False
        event = job._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await event.wait()
        return job.version > seen_version

    # --- running --------------------------------------------------------------------------

    def submit(self, upload: Upload) -> Job:
        """Queue packaging of `upload` (whose directory the job now owns)."""
        if self._closing:
            upload.discard()
            raise RuntimeError("the job manager is shutting down")
        job = Job(id=secrets.token_hex(8), asset=upload.asset_id)
        # With a board the claim decides, for this process's jobs too (they hold theirs).
        holder = (self.active_for(upload.asset_id) if self.board is None
                  else self.board.claim(upload.asset_id, job.id))
        if holder is not None:
            upload.discard()
            raise AssetBusy(upload.asset_id, holder)
        if self.board is not None:
            job._on_change = self._write
            self._write(job)
        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job, upload),
                                                  name=f"sori-job-{job.id}")
        return job

    async def _run(self, job: Job, upload: Upload) -> None:
        state: str = FAILED
        error: str | None = "the server shut down before the job finished"
        try:
            async with self._slots:
                try:
                    state, error = await self._package(job, upload)
                finally:
                    # Within the slot: the next job starts only once this one has ended.
                    await self._finish(job, upload, state, error)
        finally:
            if not job.ended:  # cancelled while waiting for a slot
                await self._finish(job, upload, state, error)
            self._tasks.pop(job.id, None)
            self._trim()

    async def _finish(self, job: Job, upload: Upload, state: str, error: str | None) -> None:
        # The upload goes before the final state is published, so a client that sees the
        # job end finds nothing of it left behind.
        await asyncio.to_thread(upload.discard)
        self._end(job, state, error)

    async def _package(self, job: Job, upload: Upload) -> tuple[str, str | None]:
        """Package the upload; the job's final (state, error)."""
        job._update(state=RUNNING, phase="starting", started=now_rfc3339())
        progress = self._progress_callback(job)
        t0 = time.monotonic()
        try:
            record = await package(upload.path, self.store, self.cfg, asset_id=upload.asset_id,
                                   title=upload.title or _title_of(upload), kind=upload.kind,
                                   access=upload.access, progress=progress, work_root=upload.directory,
                                   transcript=upload.parsed_transcript())
        except InvalidInput as e:
            return FAILED, str(e)
        except PackagerError as e:
            log.warning("job %s (%s) failed: %s", job.id, job.asset, e)
            return FAILED, f"packaging failed: {e}"
        except StoreError as e:
            log.warning("job %s (%s): store error: %s", job.id, job.asset, e)
            return FAILED, f"packaging failed: the store is unavailable ({e})"
        except Exception:
            log.exception("job %s (%s) failed", job.id, job.asset)
            return FAILED, "packaging failed: internal error (see the server log)"
        wall = time.monotonic() - t0
        duration = record.get("duration")
        if isinstance(duration, int | float) and duration > 0 and wall > 0:
            self.metrics.realtime_factor.observe(duration / wall)
        return DONE, None

    def _progress_callback(self, job: Job) -> Any:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def apply(fraction: float, phase: str) -> None:
            if job.ended:
                return
            value = round(max(job.progress, min(1.0, fraction)), 3)
            if value != job.progress or phase != job.phase:
                job._update(progress=value, phase=phase)

        def progress(fraction: float, phase: str) -> None:
            # The pipeline reports from the loop, but a phase may run in a worker thread.
            if threading.get_ident() == loop_thread:
                apply(fraction, phase)
            else:
                loop.call_soon_threadsafe(apply, fraction, phase)

        return progress

    def _end(self, job: Job, state: str, error: str | None) -> None:
        if job.ended:
            return
        changes: dict[str, Any] = {"state": state, "phase": state, "error": error,
                                   "finished": now_rfc3339()}
        if state == DONE:
            changes["progress"] = 1.0
        job._update(**changes)
        if self.board is not None:
            self.board.release(job.asset, job.id)
        self.metrics.finished.labels(state).inc()
        if error:
            log.info("job %s (%s) %s: %s", job.id, job.asset, state, error)
        else:
            log.info("job %s (%s) %s", job.id, job.asset, state)

    def _write(self, job: Job) -> None:
        """Put the job on the board: at once when its state or phase changed, at most
        every WRITE_EVERY seconds when only its progress did (and then once more after)."""
        assert self.board is not None
        if job._board_later is not None:
            job._board_later.cancel()
            job._board_later = None
        now = time.monotonic()
        last = job._board_at
        if (last is not None and job.state == RUNNING and job.phase == job._board_phase
                and now - last < WRITE_EVERY):  # only the progress moved, and lately
            job._board_later = asyncio.get_running_loop().call_later(
                WRITE_EVERY - (now - last), self._write, job)
            return
        job._board_phase = job.phase
        job._board_at = now
        try:
            self.board.write(job.id, job.to_json(), job.version)
        except OSError as e:
            log.warning("job %s: cannot write it to %s: %s", job.id, self.board.root, e)

    def _trim(self) -> None:
        """Forget the oldest finished jobs beyond `retain`."""
        finished = [j for j in self._jobs.values() if j.ended]
        for job in finished[:max(0, len(finished) - self.retain)]:
            del self._jobs[job.id]
            if self.board is not None:
                self.board.remove(job.id)

    async def close(self) -> None:
        """Cancel queued and running jobs (nothing half-published stays: the packager
        cleans up on cancellation) and wait for them to end."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _title_of(upload: Upload) -> str:
    """The client's file name without its extension, else the asset id."""
    if upload.filename:
        stem = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0].strip()
        if stem:
            return stem
    return upload.asset_id
