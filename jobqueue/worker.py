"""`sori worker`: a SAQ worker that takes packaging jobs from the queue until SIGTERM.

SAQ's defaults suit short jobs (a 10 s timeout, no heartbeat, one attempt); a packaging
job is given `[jobs] timeout` (by default from `[packager] max_duration`), a heartbeat
and `[jobs] attempts` when it is enqueued (origin side), and the worker here sweeps for
the jobs of dead workers every `[jobs] sweep_interval` seconds. On SIGTERM or SIGINT it
stops taking jobs, lets running ones finish for `[jobs] shutdown_grace` seconds, then
cancels them, which hands them back to the queue (another worker runs them again).

Housekeeping, every minute: sources under `.uploads/` whose job has ended or is unknown
(an origin that stopped between storing a source and enqueuing it) are removed, and so
are work directories left by a worker process that is no longer running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from saq import Worker
from saq.job import TERMINAL_STATUSES

from jobqueue import base
from jobqueue.task import WorkerEnv, package_job
from settings import Config
from storage import open_store
from storage.base import Store

log = logging.getLogger("sori.worker")

HOUSEKEEPING = 60.0  # seconds between sweeps of sources and work directories
ORPHAN_AGE = 3600.0  # seconds before a source with no job on the queue is removed
CANCEL_DEADLINE = 60.0  # seconds a cancelled job has to clean up what it published


class SoriWorker(Worker[Any]):
    """SAQ's worker; an idle one stops at once on SIGTERM (SAQ would wait out the whole
    grace period on its blocked dequeue)."""

    async def stop(self) -> None:
        if not self.job_task_contexts:
            self._shutdown_grace_period_s = 0
        await super().stop()


def run(cfg: Config) -> int:
    """Run a worker until SIGTERM/SIGINT; the exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is installed on Linux
        runner = asyncio.run
    runner(_main(cfg, Path(cfg.origin.upload_dir).resolve() / "worker"))
    return 0


async def _main(cfg: Config, work_root: Path) -> None:
    store = open_store(cfg.storage)
    queue = base.make_queue(cfg.jobs, worker=True)
    await asyncio.to_thread(work_root.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(_sweep_work_dirs, work_root)
    await queue.connect()
    env = WorkerEnv(cfg, store, queue, work_root)
    housekeeping: asyncio.Task[None] | None = None

    async def startup(ctx: Any) -> None:
        nonlocal housekeeping
        ctx["sori"] = env
        housekeeping = asyncio.create_task(_housekeeping(store, queue))

    worker = SoriWorker(
        queue, [(base.FUNCTION, package_job)], concurrency=cfg.jobs.concurrency,
        startup=startup,
        timers={"sweep": cfg.jobs.sweep_interval, "abort": 1, "schedule": 1,
                "worker_info": 10},
        dequeue_timeout=base.WORKER_DEQUEUE,
        shutdown_grace_period_s=cfg.jobs.shutdown_grace,
        cancellation_hard_deadline_s=CANCEL_DEADLINE,
        metadata={"pid": os.getpid()},
    )
    log.info("sori worker %s: queue %r on %s, %d job(s) at once", worker.id, cfg.jobs.queue,
             _redacted(cfg.jobs.redis_url), cfg.jobs.concurrency)
    try:
        await worker.start()  # returns after SIGTERM/SIGINT, once jobs ended or went back
    finally:
        if housekeeping is not None:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
        with contextlib.suppress(Exception):
            await queue.disconnect()
        await store.close()
        # SAQ removes its signal handlers on the way out; a second signal now stops at once.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    log.info("sori worker stopped")


async def _housekeeping(store: Store, queue: base.SoriQueue) -> None:
    while True:
        await asyncio.sleep(HOUSEKEEPING)
        try:
            await sweep_sources(store, queue)
        except Exception as e:  # the store or Redis away: next time
            log.warning("housekeeping: %s", e)


async def sweep_sources(store: Store, queue: base.SoriQueue,
                        orphan_age: float = ORPHAN_AGE) -> list[str]:
    """Remove `.uploads/{job}/` of jobs that ended, or that the queue never had."""
    removed = []
    for job_id in await store.list_dirs(base.UPLOADS + "/"):
        async with base.reachable("sweeping sources"):
            job = await queue.job(job_id)
        if job is None:
            keys = await store.list(base.source_prefix(job_id))
            infos = [await store.stat(k) for k in keys[:1]]
            if infos and time.time() - infos[0].last_modified < orphan_age:
                continue
        elif job.status not in TERMINAL_STATUSES:
            continue
        await store.delete_prefix(base.source_prefix(job_id))
        removed.append(job_id)
    return removed


def _sweep_work_dirs(root: Path) -> None:
    """Remove work directories (job-{pid}-*) of worker processes no longer running."""
    if not root.is_dir():
        return
    for d in root.glob("job-*-*"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(d.name.split("-")[1])
            if pid != os.getpid() and not _alive(pid):
                shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _redacted(url: str) -> str:
    """The Redis URL without a password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
