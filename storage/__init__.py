"""Object storage for sori: the `Store` protocol and its two implementations.

`open_store(cfg)` picks the backend named by `[storage] backend`: "local" (a
directory, the embedded default) or "s3" (MinIO or any S3).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storage.base import CHUNK_SIZE, ObjectInfo, Store, check_key, check_prefix
from storage.content_types import attachment_disposition, content_type_for
from storage.errors import (
    Conflict,
    InvalidKey,
    NotFound,
    StoreError,
    StoreUnavailable,
    Unsupported,
)
from storage.local import LocalStore
from storage.s3 import S3Store

if TYPE_CHECKING:  # storage imports nothing of ours at run time
    from settings import StorageConfig

__all__ = [
    "CHUNK_SIZE",
    "Conflict",
    "InvalidKey",
    "LocalStore",
    "NotFound",
    "ObjectInfo",
    "S3Store",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Unsupported",
    "attachment_disposition",
    "check_key",
    "check_prefix",
    "content_type_for",
    "open_store",
]


def open_store(cfg: StorageConfig) -> Store:
    """The store the configuration names. Makes no network request: S3 buckets are
    created on first use, a local root on the first write or `ping()`."""
    if cfg.backend == "local":
        return LocalStore(Path(cfg.root))
    if cfg.backend == "s3":
        return S3Store(cfg)
    raise ValueError(f"storage.backend: unknown backend {cfg.backend!r}")
