"""Upload jobs on the queue (`[jobs] backend = "redis"`): the origin's side of jobqueue.

    jobs = QueuedJobs(store, cfg)          # app[JOBS_KEY] instead of a JobManager
    job = await jobs.submit(upload)        # source → store, claim, enqueue; QueuedJob
    job = await jobs.get(job_id)           # from Redis, whichever origin took the upload
    await jobs.wait(job, seen, within)     # for SSE: True once the job changed
    await jobs.abort_for(asset_id)         # DELETE of an asset being packaged

The origin packages nothing itself: `sori worker` processes do. Everything about a job is
read from SAQ's record in Redis, so every origin answers the same. `active_for` (the sync
question other parts of the origin ask, e.g. a live stream created under an id being
packaged) reads a copy of the claims refreshed every CLAIMS_EVERY seconds; the upload and
delete handlers ask Redis itself (`holder`).

Redis down: every call raises QueueUnavailable (503 with Retry-After); an upload received
meanwhile is answered 503 and removed, never silently kept or lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

from saq.job import TERMINAL_STATUSES, Job, Status

from jobqueue import base
from origin.packaging.jobs import AssetBusy, _title_of
from origin.packaging.uploads import Upload
from settings import Config
from storage.base import Store

log = logging.getLogger("sori.jobs")

POLL = 0.25  # seconds between reads of a job an event stream follows
CLAIMS_EVERY = 1.0  # seconds between refreshes of the claims copy
ABORT_WAIT = 15.0  # seconds DELETE waits for an aborted running job to stop
SOURCE_TYPE = "application/octet-stream"


class QueuedJob:
    """A job as last read from Redis (read-only; `QueuedJobs.wait` refreshes it)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.version = 1
        self._json = data

    @property
    def id(self) -> str:
        return str(self._json["id"])

    @property
    def asset(self) -> str:
        return str(self._json["asset"])

    @property
    def state(self) -> str:
        return str(self._json["state"])

    @property
    def ended(self) -> bool:
        return self.state in ("done", "failed")

    def to_json(self) -> dict[str, Any]:
        return dict(self._json)

    def _apply(self, data: dict[str, Any]) -> bool:
        if data == self._json:
            return False
        self._json = data
        self.version += 1
        return True


def _view(job: Job) -> dict[str, Any]:
    return base.job_json(job)


class QueuedJobs:
    board = None  # no job files: the queue is the board

    def __init__(self, store: Store, cfg: Config) -> None:
        self.store = store
        self.cfg = cfg
        self.queue = base.make_queue(cfg.jobs, worker=False)
        self._claims: dict[str, str] = {}
        self._mirror: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.queue.connect()
        self._mirror = asyncio.create_task(self._mirror_claims(), name="sori-job-claims")

    async def close(self) -> None:
        if self._mirror is not None:
            self._mirror.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._mirror
        with contextlib.suppress(Exception):
            await self.queue.disconnect()

    async def _mirror_claims(self) -> None:
        while True:
            with contextlib.suppress(base.QueueUnavailable):
                self._claims = await base.all_claims(self.queue)
            await asyncio.sleep(CLAIMS_EVERY)

    # --- queries ---------------------------------------------------------------------------

    async def ping(self) -> None:
        """Return when Redis answers, else raise QueueUnavailable."""
        async with base.reachable("ping"):
            await self.queue.redis.ping()

    def active_for(self, asset_id: str) -> str | None:
        """The job packaging `asset_id`, as of the last refresh (at most CLAIMS_EVERY old)."""
        return self._claims.get(asset_id)

    async def holder(self, asset_id: str) -> str | None:
        """The job packaging `asset_id`, asked of Redis now."""
        return await base.holder(self.queue, asset_id)

    async def get(self, job_id: str) -> QueuedJob | None:
        job = await self._job(job_id)
        return QueuedJob(_view(job)) if job is not None else None

    async def _job(self, job_id: str) -> Job | None:
        if not job_id or len(job_id) > 64:
            return None
        async with base.reachable("reading the job"):
            job = await self.queue.job(job_id)
        return job if job is not None and job.function == base.FUNCTION else None

    async def wait(self, job: QueuedJob, seen_version: int, within: float | None) -> bool:
        """True as soon as `job.version > seen_version`, False after `within` seconds."""
        if job.version > seen_version:
            return True
        deadline = None if within is None else time.monotonic() + within
        while deadline is None or time.monotonic() < deadline:
            await asyncio.sleep(POLL if deadline is None
                                else max(0.0, min(POLL, deadline - time.monotonic())))
            with contextlib.suppress(base.QueueUnavailable):  # the stream waits it out
                fresh = await self._job(job.id)
                if fresh is not None:
                    job._apply(_view(fresh))
            if job.version > seen_version:
                return True
        return False

    # --- running ---------------------------------------------------------------------------

    async def submit(self, upload: Upload) -> QueuedJob:
        """Put the upload's source in the store, claim the asset, enqueue. The upload's
        directory is removed in every case. Raises AssetBusy, QueueUnavailable,
        StoreError (nothing of the upload is left anywhere then)."""
        job_id = secrets.token_hex(8)
        source = base.source_prefix(job_id) + upload.path.name
        try:
            await self.store.put_file(source, upload.path, SOURCE_TYPE)
        finally:
            await asyncio.to_thread(upload.discard)
        claimed = False
        try:
            holder = await base.claim(self.queue, upload.asset_id, job_id)
            if holder is not None:
                raise AssetBusy(upload.asset_id, holder)
            claimed = True
            jobs = self.cfg.jobs
            async with base.reachable("enqueuing the job"):
                job = await self.queue.enqueue(
                    base.FUNCTION, key=job_id,
                    timeout=jobs.job_timeout(self.cfg.packager.max_duration),
                    heartbeat=jobs.heartbeat, retries=jobs.attempts, ttl=jobs.keep_finished,
                    asset=upload.asset_id, source=source,
                    title=upload.title or _title_of(upload), kind=upload.kind,
                    access=upload.access,
                    **({"transcript": upload.transcript.decode()} if upload.transcript else {}))
            if job is None:  # a job of that key exists: cannot happen with a fresh key
                raise base.QueueUnavailable("the job queue refused the job")
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.delete_prefix(base.source_prefix(job_id))
            if claimed:
                with contextlib.suppress(Exception):
                    await base.release(self.queue, upload.asset_id, job_id)
            raise
        self._claims[upload.asset_id] = job_id
        return QueuedJob(_view(job))

    async def abort_for(self, asset_id: str) -> str | None:
        """Abort the job packaging `asset_id`, if any, and wait until it has stopped (a
        running job's packager removes what it had published); the job's id."""
        job_id = await self.holder(asset_id)
        if job_id is None:
            return None
        job = await self._job(job_id)
        if job is None:
            return None
        async with base.reachable("aborting the job"):
            await self.queue.abort(job, base.DELETED, ttl=int(ABORT_WAIT) + 30)
            deadline = time.monotonic() + ABORT_WAIT
            while time.monotonic() < deadline:
                fresh = await self.queue.job(job_id)
                if fresh is None or fresh.status in TERMINAL_STATUSES:
                    break
                await asyncio.sleep(POLL)
            else:  # its worker is gone or stuck: end the job here
                log.warning("job %s did not stop within %.0f s; marking it aborted",
                            job_id, ABORT_WAIT)
                fresh = await self.queue.job(job_id)
                if fresh is not None and fresh.status not in TERMINAL_STATUSES:
                    await self.queue.finish(fresh, Status.ABORTED, error=base.DELETED)
        await self.store.delete_prefix(base.source_prefix(job_id))
        await base.release(self.queue, asset_id, job_id)
        self._claims.pop(asset_id, None)
        log.info("job %s (%s) aborted: the asset is being deleted", job_id, asset_id)
        return job_id

