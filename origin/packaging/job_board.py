"""Packaging jobs as small files, shared by the processes that serve one upload directory.

    board = JobBoard(Path(cfg.origin.upload_dir) / "jobs")
    board.write(job_id, {"job": JOB, "version": 3})   # the owner, on every change
    board.read(job_id)          # any worker: Snapshot, or None
    board.claim(asset, job_id)  # None when claimed, else the live job that holds the asset
    board.release(asset, job_id)

With `[origin] workers = N`, an upload is packaged by the worker that received it, but
the client's next request (`GET /v1/jobs/{id}`, its event stream, another upload of the
same asset, a DELETE) can land on any worker. The owner writes each change of the job to
`{root}/{job}.json` (atomically: a temporary file, then a rename), and a worker that does
not hold the job in memory reads it from there. An asset being packaged is claimed with
`{root}/claims/{asset}` (created exclusively), so two workers never package one asset at
once.

Each file names its owner's pid. A job whose owner is no longer running, and that had not
ended, reads as failed (the process stopped before it finished: nothing was published, as
the packager publishes an asset only whole); a claim whose owner is gone is taken over.
Files of jobs that ended are removed when their owner forgets them (JobManager's retention)
or, left by a stopped process, after KEEP seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manifests.layout import ASSET_ID

JOB_ID = re.compile(r"[0-9a-f]{16}")
KEEP = 7 * 24 * 3600.0  # seconds a job file left by a stopped process is kept
STOPPED = "the server process packaging this asset stopped before the job finished"


@dataclass(frozen=True)
class Snapshot:
    job: dict[str, Any]  # JOB, as the API shows it
    version: int
    owner: int  # pid
    owner_alive: bool


def process_alive(pid: int) -> bool:
    """Whether a process with this pid is running (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


class JobBoard:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.claims = root / "claims"
        self.pid = os.getpid()

    def _path(self, job_id: str) -> Path | None:
        return self.root / f"{job_id}.json" if JOB_ID.fullmatch(job_id) else None

    # --- jobs -------------------------------------------------------------------------

    def write(self, job_id: str, job: dict[str, Any], version: int) -> None:
        path = self._path(job_id)
        if path is None:
            raise ValueError(f"not a job id: {job_id!r}")
        body = json.dumps({"job": job, "version": version, "owner": self.pid}).encode()
        self.root.mkdir(parents=True, exist_ok=True)
        replace_file(path, body, path.with_name(f".{job_id}.{self.pid}.tmp"))

    def read(self, job_id: str) -> Snapshot | None:
        """The job as its owner last wrote it; None when unknown (or not a job id)."""
        path = self._path(job_id)
        if path is None:
            return None
        try:
            data = json.loads(path.read_bytes())
            job, version, owner = data["job"], int(data["version"]), int(data["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(job, dict):
            return None
        alive = process_alive(owner)
        if not alive and job.get("state") not in ("done", "failed"):
            job = {**job, "state": "failed", "phase": "failed", "error": STOPPED,
                   "finished": job.get("finished")}
            version += 1
        return Snapshot(job, version, owner, alive)

    def remove(self, job_id: str) -> None:
        path = self._path(job_id)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    # --- claims on assets -------------------------------------------------------------

    def claim(self, asset_id: str, job_id: str) -> str | None:
        """Claim `asset_id` for `job_id`: None when claimed, else the id of the job whose
        owner is still running and holds it."""
        if not ASSET_ID.fullmatch(asset_id):
            raise ValueError(f"not an asset id: {asset_id!r}")
        self.claims.mkdir(parents=True, exist_ok=True)
        path = self.claims / asset_id
        body = json.dumps({"job": job_id, "owner": self.pid}).encode()
        for _ in range(3):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder(path)
                if holder is not None:
                    return holder
                with contextlib.suppress(OSError):
                    path.unlink()  # its owner stopped: take it over
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            return None
        return self._holder(path) or "unknown"

    def holder(self, asset_id: str) -> str | None:
        """The job holding `asset_id` in a running process, if any."""
        if not ASSET_ID.fullmatch(asset_id):
            return None
        return self._holder(self.claims / asset_id)

    def _holder(self, path: Path) -> str | None:
        try:
            data = json.loads(path.read_bytes())
            job_id, owner = str(data["job"]), int(data["owner"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # Being written right now (created, not yet filled): treat as held.
            return "unknown" if _young(path) else None
        return job_id if process_alive(owner) else None

    def release(self, asset_id: str, job_id: str) -> None:
        if not ASSET_ID.fullmatch(asset_id):
            return
        path = self.claims / asset_id
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if json.loads(path.read_bytes())["job"] == job_id:
                path.unlink()

    # --- housekeeping -----------------------------------------------------------------

    def sweep(self, keep: float = KEEP) -> None:
        """Remove job files of stopped processes older than `keep` seconds, and claims
        and temporary files they left behind."""
        cutoff = time.time() - keep
        for path in self.root.glob("*.json") if self.root.is_dir() else ():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                if path.stat().st_mtime < cutoff and not process_alive(
                        int(json.loads(path.read_bytes())["owner"])):
                    path.unlink()
        for path in self.root.glob(".*.tmp") if self.root.is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                if not process_alive(int(path.name.rsplit(".", 2)[-2])):
                    path.unlink()
        for path in self.claims.iterdir() if self.claims.is_dir() else ():
            if self._holder(path) is None:
                with contextlib.suppress(OSError):
                    path.unlink()


def replace_file(path: Path, body: bytes, tmp: Path) -> None:
    """Write `body` to `path` whole: readers see the old file or the new one, never a part
    (a file of the writer's own, `tmp`, renamed over it)."""
    tmp.write_bytes(body)
    os.replace(tmp, path)


def _young(path: Path, seconds: float = 5.0) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False
