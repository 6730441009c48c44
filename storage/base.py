"""The narrow interface every store implements, and key validation shared by all."""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.errors import InvalidKey

CHUNK_SIZE = 256 * 1024

_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,255}")


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise InvalidKey.

    A key is '/'-separated segments of [A-Za-z0-9._-], none of them '.' or '..',
    no leading '/', no empty segment. This is the only shape of key the packager
    writes, so anything else (NUL, backslash, '%', absolute or parent paths) is refused
    before it can reach a filesystem path or an S3 request.
    """
    if not key or len(key) > 1024:
        raise InvalidKey("empty or overlong key")
    for part in key.split("/"):
        if part in (".", "..") or not _SEGMENT.fullmatch(part):
            raise InvalidKey(f"invalid key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix is a key followed by '/', or '' for the whole store."""
    if prefix == "":
        return prefix
    if not prefix.endswith("/"):
        raise InvalidKey(f"prefix {prefix!r} must end with '/'")
    check_key(prefix[:-1])
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # strong validator, quoted as sent in an ETag header, e.g. '"abc"'
    last_modified: float  # seconds since the epoch
    content_type: str = "application/octet-stream"


@runtime_checkable
class Store(Protocol):
    """Object storage as sori needs it. All methods are coroutines and never block the loop.

    Errors: NotFound for a missing key, StoreUnavailable when the backend does not
    answer, InvalidKey for a key that fails `check_key`, Unsupported for presign on
    a store that cannot do it.
    """

    name: str

    async def stat(self, key: str) -> ObjectInfo: ...

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of the object (end exclusive, None = to the end)."""
        ...

    async def get(self, key: str) -> bytes:
        """The whole object; only for small objects (records, playlists)."""
        ...

    async def get_tagged(self, key: str) -> tuple[bytes, str]:
        """A small object and an opaque tag of exactly those bytes, for `put_if`."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo: ...

    async def put_if(self, key: str, data: bytes, content_type: str,
                     tag: str | None) -> ObjectInfo:
        """Write only if the object is as it was read: its tag (from `get_tagged`) is still
        `tag`, or, with `tag` None, there is no object yet. Else raise Conflict, having
        written nothing. Concurrent conditional writers of one key (threads, processes,
        machines sharing the store) are serialized: of two that read the same tag, one
        wins."""
        ...

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo: ...

    async def list(self, prefix: str = "") -> list[str]:
        """Keys under `prefix` (recursively), sorted."""
        ...

    async def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        """Immediate sub-'directories' of `prefix`, without trailing '/', sorted."""
        ...

    async def delete(self, key: str) -> None:
        """Remove one object; a missing key is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix`; returns how many."""
        ...

    async def presign(self, key: str, expires: int, filename: str | None = None) -> str:
        """A time-limited GET URL for the object, or Unsupported."""
        ...

    async def ping(self) -> None:
        """Return when the store answers, else raise StoreUnavailable."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file behind the key when the store is a local directory (for sendfile)."""
        ...

    async def close(self) -> None: ...
