"""`GET /v1/jobs/{job}/events`: a job's progress as Server-Sent Events.

    event: progress            one per visible change (state, progress, phase),
    id: 7                      the job's change counter
    data: {JOB}

    event: done | failed       the last event; then the stream closes
    data: {JOB}

    : ping                     a comment every HEARTBEAT seconds, so proxies and
                               browsers keep an idle stream open

A client that connects after the job ended gets the final event at once. Each
event carries the whole JOB, so a client that reconnects (EventSource does) loses
nothing by missing intermediate events; changes that come faster than the client
reads are coalesced into the latest state.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from origin.http import headers as h
from origin.keys import BYTES_SENT, STREAMING
from origin.packaging.jobs import Job, RemoteJob
from origin.packaging.queued_jobs import QueuedJob

AnyJob = Job | RemoteJob | QueuedJob

HEARTBEAT = 15.0  # seconds between ": ping" comments on an idle stream
RETRY_MS = 2000  # EventSource reconnection delay we ask for
CONTENT_TYPE = "text/event-stream; charset=utf-8"


class JobWaiter(Protocol):
    """origin.packaging.jobs.JobManager or origin.packaging.queued_jobs.QueuedJobs."""

    async def wait(self, job: Any, seen_version: int, within: float | None) -> bool: ...


def format_event(event: str, data: str, event_id: int | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def job_event(job: AnyJob) -> bytes:
    name = job.state if job.ended else "progress"
    return format_event(name, json.dumps(job.to_json()), job.version)


async def stream_job(request: web.Request, manager: JobWaiter,
                     job: AnyJob) -> web.StreamResponse:
    resp = web.StreamResponse(headers={
        h.CONTENT_TYPE: CONTENT_TYPE,
        h.CACHE_CONTROL: "no-cache",
        "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
    })
    await resp.prepare(request)
    request[STREAMING] = True
    sent = 0

    async def send(chunk: bytes) -> None:
        nonlocal sent
        await resp.write(chunk)
        sent += len(chunk)

    try:
        await send(f"retry: {RETRY_MS}\n\n".encode())
        seen = -1
        while True:
            if job.version > seen:
                seen = job.version
                await send(job_event(job))
                if job.ended:
                    break
                continue
            if not await manager.wait(job, seen, HEARTBEAT):
                await send(b": ping\n\n")
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nothing to tell anyone
    finally:
        request[BYTES_SENT] = sent
    return resp
