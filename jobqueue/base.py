"""The queue both sides share: SAQ over Redis, asset claims, and the JOB view of a SAQ job.

    queue = make_queue(cfg.jobs, worker=False)        # a SAQ RedisQueue
    holder = await claim(queue, asset, job_id)        # None when claimed, else the holder
    JOB = job_json(await queue.job(job_id))           # {"id","asset","state","progress",...}

Keys in Redis: SAQ's own (`saq:job:{queue}:{job}` and `saq:{queue}:*`) and one hash,
`sori:{queue}:claims` (asset → "job-id claimed-at"), written with HSETNX: an asset is
packaged by one job at a time, whichever origin received the upload. A claim whose job
has ended (or that names no job long after it was made: an origin that stopped between
claiming and enqueuing) is stale and taken over.

An upload's source travels through the store, under `.uploads/{job}/` (not an asset id,
so never listed or served), and is removed when the job ends.

Every Redis failure surfaces as QueueUnavailable (503 with Retry-After at the origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue.redis import RedisQueue
from saq.utils import now

from settings import JobsConfig

log = logging.getLogger("sori.jobqueue")

FUNCTION = "package"  # the SAQ function name of a packaging job
UPLOADS = ".uploads"  # store prefix of sources in transit (not a valid asset id)
CLAIM_GRACE = 60.0  # seconds a claim may name a job not yet on the queue
DELETED = "deleted: the asset was deleted while this job was queued or running"
CONNECT_TIMEOUT = 2.0  # seconds
ORIGIN_TIMEOUT = 5.0  # seconds a Redis command may take for an origin
WORKER_DEQUEUE = 5  # seconds a worker's dequeue blocks (BLMOVE) before asking again

SWEEP_GRACE = 10.0  # seconds a job may sit in the active list before it is marked active

# SAQ's (saq/queue/redis.py): the active jobs, once per `lock` seconds across all workers.
_SWEEP_SCRIPT = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


class QueueUnavailable(Exception):
    """Redis did not answer: retry later (503)."""


@contextlib.asynccontextmanager
async def reachable(what: str) -> AsyncIterator[None]:
    """Turn Redis errors (and timeouts) into QueueUnavailable."""
    try:
        yield
    except (RedisError, OSError, TimeoutError) as e:
        raise QueueUnavailable(f"the job queue (Redis) is unavailable: {what}: {e}") from e


class SoriQueue(RedisQueue):
    """SAQ's Redis queue, with a dequeue that waits out an outage instead of failing in a
    tight loop (SAQ's worker asks again at once after an error)."""

    async def dequeue(self, timeout: float = 0.0,  # noqa: ASYNC109 - SAQ's signature
                      poll_interval: float = 0.0) -> Job | None:
        try:
            return await super().dequeue(timeout, poll_interval)
        except (RedisError, OSError) as e:
            log.warning("dequeue: Redis is unavailable (%s); retrying in 1 s", e)
            await asyncio.sleep(1.0)
            return None


    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """SAQ's sweep, except that a job found in the active list but not yet marked active
        is left alone for SWEEP_GRACE seconds: a worker moves a job there, then marks it
        (two steps), and SAQ's own sweep would abort and rerun a job caught in between."""
        if not self._cleanup_script:
            self._cleanup_script = self.redis.register_script(_SWEEP_SCRIPT)
        id_jobs = await self._cleanup_script(keys=[self._sweep, self._active], args=[lock],
                                             client=self.redis)
        swept = []
        for job_id, job_bytes in id_jobs:
            job = self.deserialize(job_bytes)
            if job is None:
                swept.append(job_id)
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lrem(self._active, 0, job_id)
                    pipe.zrem(self._incomplete, job_id)
                    await pipe.execute()
                continue
            last = max(job.touched, job.started, job.queued)
            fresh = now() - last < SWEEP_GRACE * 1000
            if not (job.stuck or (job.status != Status.ACTIVE and not fresh)):
                continue
            log.info("sweeping job %s (%s): its worker stopped", job.key, job.status)
            swept.append(job_id)
            await self.abort(job, error=self.swept_error_message)
            with contextlib.suppress(TimeoutError):
                await job.refresh(abort)
            if job.retryable:
                await self.retry(job, error=self.swept_error_message)
            else:
                await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        return [_text(j) for j in swept]


def make_queue(cfg: JobsConfig, *, worker: bool) -> SoriQueue:
    """The SAQ queue on `cfg.redis_url`. A worker's connections wait longer than its
    blocking dequeue; an origin's give up quickly (its requests answer 503)."""
    redis = aioredis.from_url(
        cfg.redis_url, socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=WORKER_DEQUEUE + 10.0 if worker else ORIGIN_TIMEOUT,
        health_check_interval=15)
    return SoriQueue(redis, name=cfg.queue)


def claims_key(queue: RedisQueue) -> str:
    return f"sori:{queue.name}:claims"


def source_prefix(job_id: str) -> str:
    return f"{UPLOADS}/{job_id}/"


# --- claims ------------------------------------------------------------------------------

async def claim(queue: RedisQueue, asset_id: str, job_id: str) -> str | None:
    """Claim `asset_id` for `job_id`: None when claimed, else the job holding it."""
    value = f"{job_id} {time.time():.3f}"
    async with reachable("claiming the asset"):
        for _ in range(3):
            if await queue.redis.hsetnx(claims_key(queue), asset_id, value):
                return None
            held = await holder(queue, asset_id)
            if held is not None:
                return held
        return "unknown"


async def holder(queue: RedisQueue, asset_id: str) -> str | None:
    """The job that holds `asset_id`, if it has not ended (a stale claim is removed)."""
    async with reachable("reading the asset's claim"):
        raw = await queue.redis.hget(claims_key(queue), asset_id)
        if raw is None:
            return None
        value = _text(raw)
        job_id, _, at = value.partition(" ")
        job = await queue.job(job_id)
        if job is not None and job.status not in TERMINAL_STATUSES:
            return job_id
        if job is None and time.time() - float(at or 0) < CLAIM_GRACE:
            return job_id  # being enqueued right now
        await _release_value(queue, asset_id, value)
        return None


async def release(queue: RedisQueue, asset_id: str, job_id: str) -> None:
    """Release `asset_id` if `job_id` holds it."""
    async with reachable("releasing the asset's claim"):
        raw = await queue.redis.hget(claims_key(queue), asset_id)
        if raw is not None and _text(raw).partition(" ")[0] == job_id:
            await _release_value(queue, asset_id, _text(raw))


async def _release_value(queue: RedisQueue, asset_id: str, value: str) -> None:
    await queue.redis.eval(_RELEASE, 1, claims_key(queue), asset_id, value)


async def all_claims(queue: RedisQueue) -> dict[str, str]:
    """asset → job of every claim whose job has not ended."""
    async with reachable("listing claims"):
        raw = await queue.redis.hgetall(claims_key(queue))
        claims = {_text(k): _text(v).partition(" ")[0] for k, v in raw.items()}
        if not claims:
            return {}
        jobs = await queue.jobs(claims.values())
        ended = {j.key for j in jobs if j is not None and j.status in TERMINAL_STATUSES}
        return {a: j for a, j in claims.items() if j not in ended}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- the JOB view ------------------------------------------------------------------------

def job_json(job: Job) -> dict[str, Any]:
    """JOB as the API shows it (CONTRACT §4), from the SAQ job."""
    kwargs = job.kwargs or {}
    meta = job.meta or {}
    status = job.status
    error: str | None = None
    progress = float(job.progress or 0.0)
    if status in (Status.NEW, Status.QUEUED):
        state = "queued"
    elif status in (Status.ACTIVE, Status.ABORTING):
        state = "running"
    elif status == Status.COMPLETE:
        outcome = job.result if isinstance(job.result, dict) else {}
        state = "failed" if outcome.get("error") else "done"
        error = outcome.get("error")
        progress = 1.0 if state == "done" else progress
    else:
        state = "failed"
        error = _failure(job)
    ended = state in ("done", "failed")
    phase = state if ended or state == "queued" else str(meta.get("phase") or state)
    return {"id": job.key, "asset": kwargs.get("asset", ""), "state": state,
            "progress": round(min(1.0, max(0.0, progress)), 3), "phase": phase, "error": error,
            "created": _rfc3339(job.queued), "started": _rfc3339(job.started),
            "finished": _rfc3339(job.completed) if ended else None,
            "attempt": max(job.attempts, 1 if state != "queued" else 0)}


def _failure(job: Job) -> str:
    error = job.error or ""
    if job.status == Status.ABORTED:
        # SAQ's sweep aborts the job of a dead worker with "swept" once no attempt is left;
        # any other abort is a DELETE (whose reason a heartbeat write may have replaced).
        if error.startswith("swept"):
            return (f"the worker packaging this asset stopped before the job finished "
                    f"({job.attempts} attempt(s), none left)")
        return "the asset was deleted while it was being packaged"
    if "TimeoutError" in error:
        return f"packaging took longer than the job timeout ({job.timeout} s, [jobs] timeout)"
    return "packaging failed: internal error (see the worker's log)"


def _rfc3339(millis: int) -> str | None:
    if not millis:
        return None
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
