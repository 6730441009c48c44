"""The job a worker runs: fetch the upload's source from the store, package it, clean up.

At-least-once, never twice. SAQ runs a job again when its worker died (no heartbeat for
`[jobs] heartbeat` seconds). Before its first run touches the asset, a job writes down
what the asset looked like (its version prefixes, the record's version, and a copy of
the entry manifests under the job's `.uploads/{job}/entry/`) in the job's meta. A later
attempt compares: if the record now points at a version a dead attempt made, that attempt
committed (the record is the commit point) and the job is done as it stands; otherwise
every version prefix the dead attempt left is removed and the entry manifests are put
back, and the job packages afresh under a version of its own. Either way one version of
the job ends up published.

The outcome is the job's result: `{"state": "done"}` or `{"state": "failed", "error"}`
for what retrying cannot fix (bad input, a packaging error); only a dead worker, a timeout
or an unexpected error makes SAQ run the job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from saq.job import Job, Status

from jobqueue import base
from manifests import layout
from packager.errors import InvalidInput, PackagerError
from packager.pipeline import package
from packager.publish import prune_versions, read_record
from packager.transcript.parse import parse as parse_transcript
from settings import Config
from storage.base import Store
from storage.content_types import content_type_for
from storage.errors import NotFound, StoreError

log = logging.getLogger("sori.worker")

WRITE_EVERY = 0.5  # seconds between progress writes to the job


@dataclass
class WorkerEnv:
    """What every job of one worker process shares (put in SAQ's context at start-up)."""

    cfg: Config
    store: Store
    queue: base.SoriQueue
    work_root: Path


async def package_job(ctx: Any, *, asset: str, source: str, title: str | None = None,
                      kind: str = "auto", access: str | None = None,
                      transcript: str | None = None) -> dict[str, Any]:
    env: WorkerEnv = ctx["sori"]
    job: Job = ctx["job"]
    beat = _Beat(job, env.cfg.jobs.heartbeat)
    beat_task = asyncio.create_task(beat.run(), name=f"sori-beat-{job.key}")
    ended = True  # False when the job goes back to the queue (shutdown, retry)
    try:
        meta = dict(job.meta or {})
        meta.update(attempt=job.attempts, worker=f"{socket.gethostname()}:{os.getpid()}")
        base_state = meta.get("base")
        if base_state is None:
            beat.set(0.0, "snapshot")
            meta["base"] = await _snapshot(env.store, asset, job.key)
            await job.update(meta=meta)  # written before anything is published
        else:
            beat.set(0.0, "recovering")
            await job.update(meta=meta)
            if await recover(env.store, asset, job.key, base_state,
                             env.cfg.packager.keep_versions):
                log.info("job %s (%s): a previous attempt had published it", job.key, asset)
                return {"state": "done", "recovered": True}
        return await _package(env, job, beat, asset, source, title, kind, access, transcript)
    except asyncio.CancelledError:
        ended = await _aborted(env, job)
        raise
    except BaseException:
        ended = not job.retryable
        raise
    finally:
        # The flag, not only the cancel: a cancel that lands inside a Redis call may come
        # back as a connection error, which the beat survives on purpose.
        beat.stopped = True
        beat_task.cancel()
        await asyncio.wait({beat_task}, timeout=5.0)
        if ended:
            await asyncio.shield(_cleanup(env, job.key, asset))


async def _package(env: WorkerEnv, job: Job, beat: _Beat, asset: str, source: str,
                   title: str | None, kind: str, access: str | None,
                   transcript: str | None = None) -> dict[str, Any]:
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f"job-{os.getpid()}-",
                                        dir=env.work_root))
    try:
        beat.set(0.0, "fetching")
        try:
            path = await _fetch(env.store, source, work / source.rsplit("/", 1)[-1])
        except NotFound:
            return {"state": "failed", "error": "the upload's source is gone from the store"}
        t0 = time.monotonic()
        try:
            # the upload's transcript travels in the job (text, checked when uploaded)
            record = await package(path, env.store, env.cfg.packager, asset_id=asset,
                                   title=title or asset, kind=kind, access=access,
                                   progress=beat.set, work_root=work,
                                   transcript=parse_transcript(transcript.encode())
                                   if transcript is not None else None)
        except InvalidInput as e:
            return {"state": "failed", "error": str(e)}
        except PackagerError as e:
            log.warning("job %s (%s) failed: %s", job.key, asset, e)
            return {"state": "failed", "error": f"packaging failed: {e}"}
        except StoreError as e:
            log.warning("job %s (%s): store error: %s", job.key, asset, e)
            return {"state": "failed",
                    "error": f"packaging failed: the store is unavailable ({e})"}
        log.info("job %s (%s) done in %.1f s (%s s of media)", job.key, asset,
                 time.monotonic() - t0, record.get("duration"))
        return {"state": "done"}
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


class _Beat:
    """Progress and heartbeat: the packager's callback sets the figures; a task writes
    them to the job when they changed (at most every WRITE_EVERY s) and at least every
    heartbeat/5 s, and re-asserts an abort that a concurrent write may have hidden."""

    def __init__(self, job: Job, heartbeat: int) -> None:
        self.job = job
        self.every = max(0.5, heartbeat / 5)
        self.progress = 0.0
        self.phase = "starting"
        self._written: tuple[float, str] | None = None
        self.stopped = False

    def set(self, fraction: float, phase: str) -> None:
        self.progress = round(max(self.progress, min(1.0, fraction)), 3)
        self.phase = phase

    async def run(self) -> None:
        last = time.monotonic()
        while not self.stopped:
            await asyncio.sleep(WRITE_EVERY)
            now = (self.progress, self.phase)
            if now == self._written and time.monotonic() - last < self.every:
                continue
            try:
                meta = {**(self.job.meta or {}), "phase": self.phase}
                await self.job.update(progress=self.progress, meta=meta)
                self._written, last = now, time.monotonic()
                reason = await self.job.get_queue().redis.get(self.job.abort_id)  # type: ignore[attr-defined]
                if reason is not None and reason.decode().startswith("deleted"):
                    await self.job.update(status=Status.ABORTING)
            except Exception as e:  # Redis away: keep packaging, beat again later
                if not self.stopped:
                    log.warning("job %s: heartbeat failed: %s", self.job.key, e)


async def _aborted(env: WorkerEnv, job: Job) -> bool:
    """Whether a cancelled job was aborted (it ends) rather than handed back."""
    with contextlib.suppress(Exception):
        stored = await env.queue.job(job.key)
        return stored is None or stored.status in (Status.ABORTING, Status.ABORTED)
    return False


async def _cleanup(env: WorkerEnv, job_id: str, asset: str) -> None:
    """The job has ended: its source and snapshot leave the store, its claim goes."""
    try:
        await env.store.delete_prefix(base.source_prefix(job_id))
    except Exception as e:
        log.warning("job %s: cannot remove its source: %s", job_id, e)
    try:
        await base.release(env.queue, asset, job_id)
    except base.QueueUnavailable as e:
        log.warning("job %s: cannot release %s: %s", job_id, asset, e)


async def _fetch(store: Store, key: str, path: Path) -> Path:
    """Stream the object `key` to `path` (in worker threads, a chunk at a time)."""
    fobj: IO[bytes] = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in store.read(key, chunk_size=1024 * 1024):
            await asyncio.to_thread(fobj.write, chunk)
    finally:
        await asyncio.to_thread(fobj.close)
    return path


# --- a dead attempt's leftovers ------------------------------------------------------------

def _versions_prefix(asset: str) -> str:
    return layout.key(asset, layout.VERSIONS_DIR) + "/"


def _entry_copy(job_id: str, name: str) -> str:
    return f"{base.source_prefix(job_id)}entry/{name}"


async def _snapshot(store: Store, asset: str, job_id: str) -> dict[str, Any]:
    """The asset before the job touches it: versions, the record's version, and a copy of
    the entry manifests (kept with the job's source)."""
    versions = await store.list_dirs(_versions_prefix(asset))
    record = await read_record(store, asset)
    entries = []
    for name in layout.ENTRY_MANIFESTS:
        with contextlib.suppress(NotFound):
            data = await store.get(layout.key(asset, name))
            await store.put_bytes(_entry_copy(job_id, name), data, content_type_for(name))
            entries.append(name)
    return {"versions": versions, "record": (record or {}).get("version"), "entries": entries}


async def recover(store: Store, asset: str, job_id: str, snapshot: dict[str, Any],
                  keep_versions: int) -> bool:
    """Clear what dead attempts of the job left. True when one of them had committed (the
    record points at a version it made): the job is then done, nothing more to publish."""
    before = set(snapshot.get("versions") or ())
    made = set(await store.list_dirs(_versions_prefix(asset))) - before
    record = await read_record(store, asset)
    current = (record or {}).get("version")
    committed = current is not None and current != snapshot.get("record") and current in made
    for version in sorted(made - ({current} if committed else set())):
        log.info("asset %s: removing version %s left by a dead attempt of job %s",
                 asset, version, job_id)
        await store.delete_prefix(layout.key(asset, layout.version_dir(version)) + "/")
    if committed:
        await prune_versions(store, asset, keep_versions)
        return True
    for name in layout.ENTRY_MANIFESTS:  # put back what a dead attempt may have replaced
        key = layout.key(asset, name)
        if name in (snapshot.get("entries") or ()):
            old = await store.get(_entry_copy(job_id, name))
            try:
                same = await store.get(key) == old
            except NotFound:
                same = False
            if not same:
                await store.put_bytes(key, old, content_type_for(name))
        else:
            await store.delete(key)
    return False
