"""S3Store: objects in an S3 bucket (MinIO or any S3) through the `minio` SDK.

The SDK blocks, so every call runs in a bounded thread pool owned by the store.
Its HTTP pool has a timeout and at most a couple of retries, so a dead server
turns into StoreUnavailable within about `timeout` seconds instead of the SDK's
default of five minutes with five retries. The bucket is created on first use
and again after it disappeared; nothing is cached about the server's health, so
the store recovers by itself when a server that was down comes back.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import io
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3.util import Retry, Timeout

from storage.base import CHUNK_SIZE, ObjectInfo, check_key, check_prefix
from storage.content_types import (
    DEFAULT_CONTENT_TYPE,
    attachment_disposition,
    content_type_for,
)
from storage.errors import Conflict, InvalidKey, NotFound, StoreError, StoreUnavailable

if TYPE_CHECKING:  # storage imports nothing of ours at run time
    from settings import StorageConfig

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_WORKERS = 16
# Connection failures are cheap to retry; a read that timed out already cost the
# whole timeout, so it is not repeated. 5xx are retried once (urllib3 backs off).
_RETRIES = Retry(total=2, connect=1, read=0, status=1, other=0, backoff_factor=0.2,
                 status_forcelist=(500, 502, 503, 504))
# S3 multipart limits (AWS "Amazon S3 multipart upload limits"): parts of 5 MiB to
# 5 GiB, at most 10,000 parts per upload.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
_MIB = 1024 * 1024
# SigV4 presigned URLs live at most seven days (AWS "Sharing objects with presigned URLs").
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
_BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
# A conditional PUT that lost: 412, or 409 when another conditional write of the key was
# in flight (AWS S3 conditional writes)
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_INVALID_RANGE = "InvalidRange"  # 416: the range starts at or after the end


def part_size_for(size: int, threshold: int) -> int:
    """The multipart part size for an object of `size` bytes: `threshold` (at least
    5 MiB), grown in whole MiB when that would need more than 10,000 parts."""
    part = max(threshold, MIN_PART_SIZE)
    if -(-size // part) > MAX_PARTS:
        needed = -(-size // MAX_PARTS)
        part = -(-needed // _MIB) * _MIB
    return part


def _split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Accept 'host:port' (with `secure` choosing the scheme) or a full http(s) URL."""
    if "://" not in endpoint:
        return endpoint.rstrip("/"), secure
    parts = urlsplit(endpoint)
    return parts.netloc, parts.scheme == "https"


class S3Store:
    """A `Store` over one S3 bucket."""

    name = "s3"

    def __init__(self, cfg: StorageConfig, *, max_workers: int = DEFAULT_WORKERS) -> None:
        endpoint, secure = _split_endpoint(cfg.endpoint, cfg.secure)
        self.bucket = cfg.bucket
        self._multipart_threshold = cfg.multipart_threshold
        self._http = urllib3.PoolManager(
            timeout=Timeout(connect=cfg.timeout, read=cfg.timeout),
            retries=_RETRIES,
            maxsize=max_workers,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self._client = Minio(
            endpoint,
            access_key=cfg.access_key or None,
            secret_key=cfg.secret_key or None,
            secure=secure,
            region=cfg.region or None,  # a known region saves a GetBucketLocation per bucket
            http_client=self._http,
        )
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sori-s3")
        self._bucket_ready = False

    # --- plumbing -----------------------------------------------------------------

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking SDK call in the store's pool, with errors translated."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, functools.partial(self._translated, fn, *args, **kwargs)
        )

    def _translated(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as e:
            raise self._error(e) from e

    def _error(self, e: Exception) -> StoreError:
        if isinstance(e, S3Error):
            if e.code in _NOT_FOUND_CODES:
                return NotFound(e.object_name or "")
            if e.code in _CONFLICT_CODES:
                return Conflict(e.object_name or "")
            if e.code in _NO_BUCKET_CODES:
                self._bucket_ready = False  # made again on next use
                return StoreUnavailable(f"bucket {self.bucket!r} does not exist")
            return StoreUnavailable(f"S3 error {e.code}: {e.message}")
        if isinstance(e, ServerError):
            return StoreUnavailable(f"S3 server error (HTTP {e.status_code})")
        if isinstance(e, InvalidResponseError):
            return StoreUnavailable(f"unexpected answer from the S3 server: {e}")
        return StoreUnavailable(f"S3 server unreachable: {e}")

    async def _ready(self) -> None:
        if not self._bucket_ready:
            await self._run(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        if not self._client.bucket_exists(self.bucket):
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as e:  # made concurrently by another worker or process
                if e.code not in _BUCKET_EXISTS_CODES:
                    raise
        self._bucket_ready = True

    def _info(self, key: str, etag: str | None, size: int, last_modified: float,
              content_type: str | None) -> ObjectInfo:
        # S3's ETag is a strong validator (RFC 9110 section 8.8.3); the SDK strips its quotes.
        plain = (etag or "").strip('"')
        if not content_type or content_type == DEFAULT_CONTENT_TYPE:
            content_type = content_type_for(key)
        return ObjectInfo(key=key, size=size, etag=f'"{plain}"',
                          last_modified=last_modified, content_type=content_type)

    # --- reading ------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        await self._ready()
        obj = await self._run(self._client.stat_object, self.bucket, key)
        modified = obj.last_modified.timestamp() if obj.last_modified else 0.0
        return self._info(key, obj.etag, obj.size or 0, modified, obj.content_type)

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        if start < 0 or (end is not None and end < 0) or chunk_size <= 0:
            raise ValueError("byte positions must not be negative, chunk_size must be positive")
        check_key(key)
        return self._stream(key, start, end, chunk_size)

    async def _stream(self, key: str, start: int, end: int | None,
                      chunk_size: int) -> AsyncIterator[bytes]:
        await self._ready()
        if end is not None and end <= start:
            await self.stat(key)  # an empty range still reports a missing object
            return
        # A ranged GET (RFC 9110 section 14.1.2, "bytes=start-last"); the SDK sends
        # "bytes=offset-" when length is 0. Only the range crosses the network.
        length = 0 if end is None else end - start
        try:
            response = await self._run(self._client.get_object, self.bucket, key,
                                       offset=start, length=length)
        except StoreUnavailable as e:
            if isinstance(e.__cause__, S3Error) and e.__cause__.code == _INVALID_RANGE:
                return  # the range starts at or past the end: no bytes
            raise
        finished = False
        try:
            while True:
                data = await self._run(response.read, chunk_size, decode_content=False)
                if not data:
                    finished = True
                    break
                yield data
        finally:
            if not finished:
                response.close()  # unread bytes: the connection cannot be reused
            response.release_conn()

    async def get(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(key)])

    async def get_tagged(self, key: str) -> tuple[bytes, str]:
        """One GET: the bytes and the ETag of that very object (a stat beside it could
        see a newer one)."""
        check_key(key)
        await self._ready()
        response = await self._run(self._client.get_object, self.bucket, key)
        try:
            data = await self._run(response.read, decode_content=False)
            tag = (response.headers.get("ETag") or "").strip('"')
        finally:
            response.close()
            response.release_conn()
        if not tag:
            raise StoreUnavailable(f"the S3 server sent {key!r} without an ETag")
        return data, tag

    # --- writing ------------------------------------------------------------------

    async def put_if(self, key: str, data: bytes, content_type: str,
                     tag: str | None) -> ObjectInfo:
        """S3 conditional writes: `If-Match: "etag"`, or `If-None-Match: *` to create
        (AWS S3 since 2024, MinIO, moto). The SDK's public put_object turns unknown
        headers into user metadata, so this sends the PutObject itself."""
        check_key(key)
        await self._ready()
        content_type = content_type or content_type_for(key)
        headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": content_type}
        if tag is None:
            headers["If-None-Match"] = "*"
        else:
            headers["If-Match"] = f'"{tag}"'
        try:
            result = await self._run(self._client._put_object, self.bucket, key, data, headers)
        except NotFound:  # If-Match on an object removed since it was read
            raise Conflict(key) from None
        return self._info(key, result.etag, len(data), time.time(), content_type)


    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        check_key(key)
        await self._ready()
        content_type = content_type or content_type_for(key)
        result = await self._run(self._client.put_object, self.bucket, key,
                                 io.BytesIO(data), len(data), content_type=content_type)
        # Last-Modified is the server's, read by stat(); a put reports the client's clock.
        return self._info(key, result.etag, len(data), time.time(), content_type)

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo:
        """Upload a file; over `multipart_threshold` bytes as a multipart upload
        (S3 CreateMultipartUpload/UploadPart/CompleteMultipartUpload), so a large
        file is never held in memory whole and a failed part is all that is resent."""
        check_key(key)
        await self._ready()
        content_type = content_type or content_type_for(key)
        size = await asyncio.to_thread(os.path.getsize, path)
        result = await self._run(
            self._client.fput_object, self.bucket, key, str(path),
            content_type=content_type,
            part_size=part_size_for(size, self._multipart_threshold),
        )
        return self._info(key, result.etag, size, time.time(), content_type)

    # --- listing and deleting -----------------------------------------------------

    async def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        await self._ready()
        return await self._run(self._list_sync, prefix)

    def _list_sync(self, prefix: str) -> builtins.list[str]:
        return sorted(self._keys(prefix))

    def _keys(self, prefix: str) -> Iterator[str]:
        for obj in self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True):
            name = obj.object_name
            if name is not None and not obj.is_dir and _is_key(name):
                yield name

    async def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        check_prefix(prefix)
        await self._ready()
        return await self._run(self._list_dirs_sync, prefix)

    def _list_dirs_sync(self, prefix: str) -> builtins.list[str]:
        # ListObjectsV2 with delimiter '/': sub-"directories" come back as CommonPrefixes.
        names = []
        for obj in self._client.list_objects(self.bucket, prefix=prefix or None, recursive=False):
            name = obj.object_name
            if name is not None and obj.is_dir:
                child = name[len(prefix):].rstrip("/")
                if _is_key(prefix + child):
                    names.append(child)
        return sorted(names)

    async def delete(self, key: str) -> None:
        # DeleteObject on a missing key succeeds (204), as the protocol wants.
        check_key(key)
        await self._ready()
        await self._run(self._client.remove_object, self.bucket, key)

    async def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        await self._ready()
        return await self._run(self._delete_prefix_sync, prefix)

    def _delete_prefix_sync(self, prefix: str) -> int:
        keys = self._list_sync(prefix)
        # DeleteObjects takes up to 1,000 keys a request; the SDK batches and yields
        # only the failures, lazily, so the iterator must be drained to do the work.
        errors = list(self._client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
        if errors:
            first = errors[0]
            raise StoreUnavailable(
                f"could not delete {len(errors)} of {len(keys)} objects under {prefix!r}: "
                f"{first.code} {first.message} ({first.name})"
            )
        return len(keys)

    # --- the rest -----------------------------------------------------------------

    async def presign(self, key: str, expires: int, filename: str | None = None) -> str:
        check_key(key)
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires must be 1..{MAX_PRESIGN_SECONDS} seconds")
        headers: dict[str, Any] = {}
        if filename is not None:
            # S3 GetObject's response-content-disposition overrides the stored header.
            headers["response-content-disposition"] = attachment_disposition(filename)
        # Signing is local (the region is known): no request is made.
        return await self._run(self._client.presigned_get_object, self.bucket, key,
                               expires=timedelta(seconds=expires),
                               response_headers=headers or None)

    async def ping(self) -> None:
        """A round trip to the server (HEAD bucket), making the bucket if it is missing."""
        await self._run(self._ensure_bucket)

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.clear()


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except InvalidKey:
        return False
    return True
