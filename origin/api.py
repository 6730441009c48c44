"""The asset and job API under `/v1/` (CONTRACT §4).

    GET    /v1/assets                      {"assets": [ASSET, ...]}, newest first
    POST   /v1/assets                      upload → 202 {"job": JOB, "asset": {"id"}}
    GET    /v1/assets/{id}                 ASSET
    DELETE /v1/assets/{id}                 204; the record first, then every object
    GET    /v1/assets/{id}/download        the progressive file as an attachment
    GET    /v1/assets/{id}/presigned-url   {"url", "expires", "expires_at"} (s3 store)
    GET    /v1/jobs/{job}                  JOB
    GET    /v1/jobs/{job}/events           JOB as Server-Sent Events (origin.http.sse)

The asset record in the store is the only truth about assets (no index, no
database): listing reads `{id}/asset.json` for every top-level prefix. Jobs are
in memory (origin.packaging.jobs), or on a queue in Redis with `[jobs] backend = "redis"`
(origin.packaging.queued_jobs, run by `sori worker`). Write methods need an API key when keys are configured
(origin.auth). Errors are raised as domain exceptions or returned with
`json_error`, and become `{"error": ...}` at the edge (origin.errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import posixpath
import shutil
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from yarl import URL

from jobqueue.base import QueueUnavailable
from manifests import layout
from origin.app import MEDIA_KEY
from origin.auth import bad_key_on_read, holds_write_key
from origin.errors import json_error, register_error
from origin.http import headers as h
from origin.http import sse
from origin.keys import (
    BYTES_SENT,
    CACHE_RESULT,
    CONFIG_KEY,
    GRANT,
    LIVE_KEY,
    PREPARED,
    STORE_KEY,
    STREAMING,
)
from origin.media import MediaHandler, is_private_record
from origin.observe.metrics import metrics_of
from origin.packaging import uploads
from origin.packaging.job_board import JobBoard
from origin.packaging.jobs import AssetBusy, JobManager
from origin.packaging.queued_jobs import QueuedJobs
from packager.errors import InvalidInput
from packager.live.registry import StillLive
from packager.publish import read_record
from packager.record import with_public_url
from storage.base import check_key
from storage.content_types import attachment_disposition
from storage.errors import InvalidKey, NotFound, Unsupported

log = logging.getLogger("sori.api")

# JobManager: `[jobs] backend = "local"`, jobs run in this process; QueuedJobs: "redis",
# jobs on the queue, run by `sori worker` processes.
JOBS_KEY: web.AppKey[JobManager | QueuedJobs] = web.AppKey("sori.jobs")
QUEUE_DOWN = "the job queue (Redis) is unavailable: retry later"
LIST_CONCURRENCY = 16  # records read at once when listing
STALE_UPLOADS = 24 * 3600.0  # upload directories older than this are left-overs
API_CACHE = h.NO_STORE
# Content-Disposition for the media response of a download (read by _add_disposition).
_DISPOSITION = web.RequestKey("sori.disposition", str)

register_error(uploads.UploadTooLarge, 413)
register_error(uploads.UploadError, 400)
register_error(InvalidInput, 400)
register_error(StillLive, 409)


def setup(app: web.Application) -> None:
    cfg = app[CONFIG_KEY]
    if cfg.jobs.backend == "redis":
        app[JOBS_KEY] = QueuedJobs(app[STORE_KEY], cfg)
        app.on_startup.append(_start_queue)
    else:
        app[JOBS_KEY] = JobManager(app[STORE_KEY], cfg.packager,
                                   concurrency=cfg.origin.job_concurrency,
                                   registry=metrics_of(app).registry,
                                   board=JobBoard(Path(cfg.origin.upload_dir) / "jobs"))
    r = app.router
    r.add_get("/v1/assets", list_assets, name="api-assets")
    r.add_post("/v1/assets", upload_asset, name="api-upload")
    r.add_get("/v1/assets/{id}", get_asset, name="api-asset")
    r.add_delete("/v1/assets/{id}", delete_asset, name="api-delete")
    r.add_get("/v1/assets/{id}/download", download, name="api-download")
    r.add_get("/v1/assets/{id}/presigned-url", presigned_url, name="api-presign")
    r.add_get("/v1/jobs/{job}", get_job, name="api-job")
    r.add_get("/v1/jobs/{job}/events", job_events, name="api-job-events")
    app.on_startup.append(_sweep_uploads)
    app.on_response_prepare.append(_add_disposition)
    app.on_shutdown.append(_close_jobs)


# --- helpers -----------------------------------------------------------------------------

def json_response(data: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    resp = web.Response(status=status, body=body, headers=headers)
    resp.headers[h.CONTENT_TYPE] = h.JSON_TYPE
    resp.headers[h.CACHE_CONTROL] = API_CACHE
    return resp


def _asset_id(request: web.Request) -> str:
    asset_id = request.match_info["id"]
    if not layout.is_valid_asset_id(asset_id):
        raise InvalidKey(f"invalid asset id {asset_id!r}: use 1-128 letters, digits, '.', "
                         "'_' or '-', starting with a letter or digit")
    return asset_id


async def _record(request: web.Request, asset_id: str) -> dict[str, Any]:
    rec = await read_record(request.app[STORE_KEY], asset_id)
    if rec is None:
        raise NotFound(f"no asset {asset_id!r}")
    return rec


def _public(request: web.Request, rec: dict[str, Any]) -> dict[str, Any]:
    """The record as clients see it: a live asset's with the figures of the moment."""
    live = request.app.get(LIVE_KEY)
    stream = live.get(str(rec.get("id"))) if live is not None else None
    if live is not None and stream is not None and rec.get("state") == "live":
        rec = live.record_of(stream)
    return with_public_url(rec, request.app[CONFIG_KEY].origin.public_url)


def _download_key(asset_id: str, rec: dict[str, Any]) -> str:
    if rec.get("state") == "live":
        raise StillLive(f"asset {asset_id!r} is live: its download exists once the "
                        "stream has ended")
    rel = rec.get("download_key")
    if not isinstance(rel, str) or not rel:
        raise NotFound(f"asset {asset_id!r} has no download")
    return check_key(layout.key(asset_id, rel))


def _download_name(asset_id: str, key: str) -> str:
    """`<id>.m4a` or `<id>.mp4`, after the packaged file's own extension."""
    return f"{asset_id}{posixpath.splitext(key)[1] or '.m4a'}"


# --- assets ------------------------------------------------------------------------------

async def list_assets(request: web.Request) -> web.Response:
    refused = bad_key_on_read(request)
    if refused is not None:
        return refused
    store = request.app[STORE_KEY]
    ids = [d for d in await store.list_dirs("") if layout.is_valid_asset_id(d)]
    sem = asyncio.Semaphore(LIST_CONCURRENCY)

    async def one(asset_id: str) -> dict[str, Any] | None:
        async with sem:
            return await read_record(store, asset_id)

    records = [r for r in await asyncio.gather(*(one(i) for i in ids)) if r is not None]
    if not holds_write_key(request):
        records = [r for r in records if not is_private_record(r)]
    records.sort(key=lambda r: str(r.get("id", "")))
    records.sort(key=lambda r: str(r.get("created", "")), reverse=True)
    return json_response({"assets": [_public(request, r) for r in records]})


async def get_asset(request: web.Request) -> web.Response:
    refused = bad_key_on_read(request)
    if refused is not None:
        return refused
    asset_id = _asset_id(request)
    return json_response(_public(request, await _readable_record(request, asset_id)))


async def _readable_record(request: web.Request, asset_id: str) -> dict[str, Any]:
    """The record, if this request may read it: a private one needs a write key (else it
    is answered as unknown, so that its existence does not show)."""
    rec = await _record(request, asset_id)
    if is_private_record(rec) and not holds_write_key(request):
        raise NotFound(f"no asset {asset_id!r} (a private asset's record needs a write key)")
    return rec



async def upload_asset(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG_KEY]
    jobs = request.app[JOBS_KEY]
    # Refuse what can be refused before reading a byte of the body.
    early = uploads.query_fields(request)
    uploads.check_fields(early)
    if isinstance(jobs, QueuedJobs):
        return await _upload_queued(request, jobs, early)
    if early.get("id"):
        _refuse_if_busy(jobs, early["id"])
    upload = await uploads.receive(request, Path(cfg.origin.upload_dir),
                                   cfg.origin.max_upload_bytes)
    try:
        _refuse_if_busy(jobs, upload.asset_id)
        job = jobs.submit(upload)
    except BaseException:
        upload.discard()
        raise
    log.info("upload of %d bytes for %s: job %s", upload.size, upload.asset_id, job.id)
    location = f"/v1/jobs/{job.id}"
    return json_response({"job": job.to_json(), "asset": {"id": job.asset}}, status=202,
                         headers={"Location": location})


async def _upload_queued(request: web.Request, jobs: QueuedJobs,
                         early: dict[str, str]) -> web.Response:
    """The upload goes to the store and on the queue; a worker packages it. Redis down:
    503 before the body is read when possible, else after (the upload is removed)."""
    cfg = request.app[CONFIG_KEY]
    try:
        if early.get("id"):
            holder = await jobs.holder(early["id"])
            if holder is not None:
                raise AssetBusy(early["id"], holder)
        else:
            await jobs.ping()
        upload = await uploads.receive(request, Path(cfg.origin.upload_dir),
                                       cfg.origin.max_upload_bytes)
        job = await jobs.submit(upload)  # removes the received file in every case
    except QueueUnavailable as e:
        log.warning("upload refused: %s", e)
        return json_error(503, QUEUE_DOWN)
    log.info("upload of %d bytes for %s: job %s (queued)", upload.size, upload.asset_id, job.id)
    return json_response({"job": job.to_json(), "asset": {"id": job.asset}}, status=202,
                         headers={"Location": f"/v1/jobs/{job.id}"})


register_error(AssetBusy, 409)


def _refuse_if_busy(jobs: JobManager | QueuedJobs, asset_id: str) -> None:
    holder = jobs.active_for(asset_id)
    if holder is not None:
        raise AssetBusy(asset_id, holder)


async def delete_asset(request: web.Request) -> web.Response:
    asset_id = _asset_id(request)
    store = request.app[STORE_KEY]
    jobs = request.app[JOBS_KEY]
    aborted: str | None = None
    if isinstance(jobs, QueuedJobs):
        # A queued or running job of the asset is aborted (whichever worker runs it),
        # then the asset goes as usual.
        try:
            aborted = await jobs.abort_for(asset_id)
        except QueueUnavailable as e:
            log.warning("delete of %s refused: %s", asset_id, e)
            return json_error(503, QUEUE_DOWN)
    else:
        _refuse_if_busy(jobs, asset_id)
    live = request.app.get(LIVE_KEY)
    stream = live.get(asset_id) if live is not None else None
    if live is not None and stream is not None:
        await live.discard(stream)
    prefix = f"{asset_id}/"
    keys = await store.list(prefix)
    if not keys and aborted is None:
        raise NotFound(f"no asset {asset_id!r}")
    # The record goes first: from this moment the asset is gone from every listing,
    # even if removing the rest is interrupted (a later DELETE finishes the job).
    await store.delete(layout.key(asset_id, layout.RECORD))
    await store.delete_prefix(prefix)
    # This process's memory must not keep serving the bytes; other workers notice that the
    # record is gone within media.ALIVE_FOR.
    request.app[MEDIA_KEY].forget(asset_id)
    log.info("deleted asset %s (%d objects)", asset_id, len(keys))
    return web.Response(status=204, headers={h.CACHE_CONTROL: API_CACHE})


async def download(request: web.Request) -> web.StreamResponse:
    """The progressive file through the media handler, so ranges, conditionals, ETag,
    HEAD and streaming behave exactly as for `/assets/...`; only Content-Disposition
    is added (in `_add_disposition`)."""
    asset_id = _asset_id(request)
    rec = await _record(request, asset_id)
    media: MediaHandler = request.app[MEDIA_KEY]
    grant = None
    if is_private_record(rec):
        admitted = media.guard.admit(request, asset_id, request.query.get("token"))
        if isinstance(admitted, web.Response):
            return admitted
        grant = request[GRANT] = admitted
    key = _download_key(asset_id, rec)
    request[_DISPOSITION] = attachment_disposition(_download_name(asset_id, key))
    media_request = request.clone(rel_url=URL.build(path=f"/assets/{key}", encoded=True))
    if grant is not None:
        media_request[GRANT] = grant
    try:
        return await media.handle(media_request)
    finally:
        # The clone has its own copy of the per-request state the edge middleware reads.
        if STREAMING in media_request:
            request[STREAMING] = media_request[STREAMING]
        if BYTES_SENT in media_request:
            request[BYTES_SENT] = media_request[BYTES_SENT]
        if PREPARED in media_request:
            request[PREPARED] = media_request[PREPARED]
        if CACHE_RESULT in media_request:
            request[CACHE_RESULT] = media_request[CACHE_RESULT]


async def _add_disposition(request: web.Request, resp: web.StreamResponse) -> None:
    disposition = request.get(_DISPOSITION)
    if disposition is not None and resp.status in (200, 206):
        resp.headers["Content-Disposition"] = disposition


async def presigned_url(request: web.Request) -> web.Response:
    asset_id = _asset_id(request)
    key = _download_key(asset_id, await _readable_record(request, asset_id))
    expires = request.app[CONFIG_KEY].security.presign_expiry
    try:
        url = await request.app[STORE_KEY].presign(key, expires, _download_name(asset_id, key))
    except Unsupported:
        return json_error(409, "the local store cannot make presigned URLs: use the s3 "
                               "backend ([storage] backend = \"s3\"), or download through "
                               f"/v1/assets/{asset_id}/download")
    expires_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=expires)
    return json_response({"url": url, "expires": expires,
                          "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")})


# --- jobs --------------------------------------------------------------------------------

async def _job(request: web.Request) -> Any:
    jobs = request.app[JOBS_KEY]
    job_id = request.match_info["job"]
    job: Any = await jobs.get(job_id) if isinstance(jobs, QueuedJobs) else jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r} (finished jobs are kept for a while, then "
                       "forgotten)")
    return job


async def get_job(request: web.Request) -> web.Response:
    try:
        job = await _job(request)
    except QueueUnavailable:
        return json_error(503, QUEUE_DOWN)
    return json_response(job.to_json())


async def job_events(request: web.Request) -> web.StreamResponse:
    try:
        job = await _job(request)
    except QueueUnavailable:
        return json_error(503, QUEUE_DOWN)
    return await sse.stream_job(request, request.app[JOBS_KEY], job)


# --- lifecycle ---------------------------------------------------------------------------

async def _start_queue(app: web.Application) -> None:
    jobs = app[JOBS_KEY]
    if isinstance(jobs, QueuedJobs):
        await jobs.start()


async def _close_jobs(app: web.Application) -> None:
    """Before in-flight responses are waited for: cancel the jobs, which also ends
    their event streams (with a final `failed`)."""
    await app[JOBS_KEY].close()


async def _sweep_uploads(app: web.Application) -> None:
    """Remove upload directories a crashed process left behind (old ones only: with
    several workers sharing the directory, a young one may be another's upload)."""
    root = Path(app[CONFIG_KEY].origin.upload_dir)

    def sweep() -> None:
        if not root.is_dir():
            return
        cutoff = time.time() - STALE_UPLOADS
        for d in root.glob("up-*"):
            with contextlib.suppress(OSError):
                if d.is_dir() and d.stat().st_mtime < cutoff:
                    shutil.rmtree(d, ignore_errors=True)
        board = app[JOBS_KEY].board
        if board is not None:
            board.sweep()

    await asyncio.to_thread(sweep)
