"""LocalStore: objects as files under one directory, the embedded default store.

The directory is itself a static origin: the object `{id}/master.m3u8` is the
file `{root}/{id}/master.m3u8` (CONTRACT.md section 5). Every blocking call runs in
a worker thread; bytes are read with `pread` a chunk at a time, so serving a range
never reads more of the file than the range.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import hashlib
import itertools
import os
import shutil
import stat as stat_mode
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from storage.base import CHUNK_SIZE, ObjectInfo, check_key, check_prefix
from storage.content_types import content_type_for
from storage.errors import Conflict, InvalidKey, NotFound, StoreUnavailable, Unsupported

T = TypeVar("T")

# Temporary files carry a '~', which no valid key segment contains, so a half-written
# object can never be listed, read or deleted as an object.
_TEMP_PREFIX = ".~"
_TEMP_SUFFIX = ".tmp"
_FILE_MODE = 0o644
_COPY_BUFFER = 1024 * 1024
_MKDIR_ATTEMPTS = 3  # a concurrent delete may prune the directory we just made
_DIR_CACHE_MAX = 4096  # resolved directories `put_many` remembers
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


def _is_key(key: str) -> bool:
    try:
        check_key(key)
    except InvalidKey:
        return False
    return True


def _check_range(start: int, end: int | None, chunk_size: int) -> None:
    if start < 0 or (end is not None and end < 0):
        raise ValueError("byte positions must not be negative")
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")


def _strong_etag(st: os.stat_result) -> str:
    # RFC 9110 section 8.8.3: a strong validator changes whenever the bytes do. A
    # write replaces the file (new inode, new mtime), so inode, size and mtime_ns
    # together change with every write and stay fixed otherwise.
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def _content_tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """A `Store` over a directory tree."""

    name = "local"

    def __init__(self, root: Path | str, *, fsync: bool = False) -> None:
        self.root = Path(root).resolve()
        self._fsync = fsync
        self._dirs: dict[str, str] = {}  # key prefix -> its checked directory (put_many)
        self._serial = itertools.count()

    # --- paths --------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file for `key`, refusing any key that would resolve outside the root.

        `check_key` already refuses '..', absolute paths, NUL and backslashes; resolving
        the path also refuses a symlink inside the tree that points out of it.
        """
        check_key(key)
        try:
            path = (self.root / key).resolve()
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
            raise InvalidKey(f"key {key!r} runs into a symlink loop") from None
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKey(f"key {key!r} leaves the store")
        return path

    def _dir(self, prefix: str) -> Path:
        check_prefix(prefix)
        return self.root if prefix == "" else self._path(prefix[:-1])

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    # --- reading ------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._stat_sync, key)

    def _stat_sync(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with _translated(key):
            st = os.stat(path)
        if not stat_mode.S_ISREG(st.st_mode):
            raise NotFound(key)
        return self._info(key, st)

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=_strong_etag(st),
            last_modified=st.st_mtime_ns / 1e9,
            content_type=content_type_for(key),
        )

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        _check_range(start, end, chunk_size)
        check_key(key)
        return self._stream(key, start, end, chunk_size)

    async def _stream(self, key: str, start: int, end: int | None,
                      chunk_size: int) -> AsyncIterator[bytes]:
        fd, size = await asyncio.to_thread(self._open, key)
        try:
            stop = size if end is None else min(end, size)
            pos = start
            while pos < stop:
                data = await asyncio.to_thread(os.pread, fd, min(chunk_size, stop - pos), pos)
                if not data:  # truncated underneath us; writes replace files, so unlikely
                    break
                pos += len(data)
                yield data
        finally:
            os.close(fd)

    def _open(self, key: str) -> tuple[int, int]:
        path = self._path(key)
        with _translated(key):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat_mode.S_ISREG(st.st_mode):
                raise NotFound(key)
        except BaseException:
            os.close(fd)
            raise
        return fd, st.st_size

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get_sync, key)

    def _get_sync(self, key: str) -> bytes:
        path = self._path(key)
        with _translated(key):
            return path.read_bytes()

    async def get_tagged(self, key: str) -> tuple[bytes, str]:
        data = await self.get(key)
        return data, _content_tag(data)

    # --- writing ------------------------------------------------------------------

    async def put_if(self, key: str, data: bytes, content_type: str,
                     tag: str | None) -> ObjectInfo:
        return await asyncio.to_thread(self._put_if_sync, key, data, tag)

    def _put_if_sync(self, key: str, data: bytes, tag: str | None) -> ObjectInfo:
        """Compare and write under an exclusive flock(2) of the object's directory, which
        every conditional writer of that directory takes (threads and processes alike:
        each opens its own description). The tag is a hash of the bytes, not the stat
        validator: an inode reused within the file system's clock tick could repeat that."""
        path = self._path(key)
        for attempt in range(_MKDIR_ATTEMPTS):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                lock = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                break
            except (FileExistsError, NotADirectoryError):
                raise InvalidKey(f"key {key!r} lies under an existing object") from None
            except FileNotFoundError:  # pruned by a concurrent delete: make it again
                if attempt == _MKDIR_ATTEMPTS - 1:
                    raise
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current: str | None = _content_tag(self._get_sync(key))
            except NotFound:
                current = None
            if current != tag:
                raise Conflict(key)
            return self._put_sync(key, lambda f: f.write(data))
        finally:
            os.close(lock)  # releases the lock


    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        # The content type is derived from the extension (content_types.py), the only
        # thing a plain directory can remember; `content_type` is accepted for the protocol.
        return await asyncio.to_thread(self._put_sync, key, lambda f: f.write(data))

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo:
        return await asyncio.to_thread(self._put_file_sync, key, Path(path))

    def _put_file_sync(self, key: str, source: Path) -> ObjectInfo:
        with source.open("rb") as src:
            return self._put_sync(key, lambda f: shutil.copyfileobj(src, f, _COPY_BUFFER))

    def _put_sync(self, key: str, fill: Callable[[BinaryIO], object]) -> ObjectInfo:
        """Write through a temporary file in the target directory, then rename it over
        the target: readers see the old bytes or the new ones, never a mix (rename(2)
        is atomic within one file system)."""
        path = self._path(key)
        fd, tmp = self._mkstemp(key, path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                if self._fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.chmod(tmp, _FILE_MODE)
            try:
                os.replace(tmp, path)
            except IsADirectoryError:
                raise InvalidKey(f"key {key!r} is a directory of other objects") from None
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return self._stat_sync(key)

    def _mkstemp(self, key: str, parent: Path) -> tuple[int, str]:
        for attempt in range(_MKDIR_ATTEMPTS):
            try:
                parent.mkdir(parents=True, exist_ok=True)
                return tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=parent)
            except (FileExistsError, NotADirectoryError):
                raise InvalidKey(f"key {key!r} lies under an existing object") from None
            except FileNotFoundError:
                if attempt == _MKDIR_ATTEMPTS - 1:
                    raise
            except OSError as e:
                raise StoreUnavailable(f"cannot write {key!r}: {e.strerror}") from e
        raise AssertionError("unreachable")

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Write several small objects (a live stream's parts and segments) in one worker
        thread, each atomically as `put_bytes` does (a temporary file in the target's
        directory renamed over it: a reader never sees one half written), in order, with
        fewer system calls: each directory is checked and made once and remembered, the
        temporary name is a counter rather than `mkstemp`'s random tries, and no stat
        follows. Keys are checked as everywhere else."""
        await asyncio.to_thread(self._put_many_sync, items)

    def _put_many_sync(self, items: Sequence[tuple[str, bytes]]) -> None:
        for key, data in items:
            check_key(key)
            prefix, _, name = key.rpartition("/")
            for attempt in range(_MKDIR_ATTEMPTS):
                directory = self._checked_dir(key, prefix)
                tmp = f"{directory}/{_TEMP_PREFIX}{name}.{os.getpid()}.{next(self._serial)}" \
                      f"{_TEMP_SUFFIX}"
                try:
                    fd = os.open(tmp, _CREATE, _FILE_MODE)
                except FileNotFoundError:  # the directory was removed since: make it again
                    self._dirs.pop(prefix, None)
                    if attempt == _MKDIR_ATTEMPTS - 1:
                        raise
                    continue
                except OSError as e:
                    raise StoreUnavailable(f"cannot write {key!r}: {e.strerror}") from e
                break
            try:
                try:
                    os.fchmod(fd, _FILE_MODE)  # whatever the umask
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    if self._fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                try:
                    os.replace(tmp, f"{directory}/{name}")
                except IsADirectoryError:
                    raise InvalidKey(f"key {key!r} is a directory of other objects") from None
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def _checked_dir(self, key: str, prefix: str) -> str:
        """The directory of `key` (inside the root, made if missing), once per prefix."""
        found = self._dirs.get(prefix)
        if found is None:
            path = self._path(key).parent
            try:
                path.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise InvalidKey(f"key {key!r} lies under an existing object") from None
            except OSError as e:
                raise StoreUnavailable(f"cannot write {key!r}: {e.strerror}") from e
            if len(self._dirs) >= _DIR_CACHE_MAX:
                self._dirs.clear()
            found = self._dirs[prefix] = str(path)
        return found

    # --- listing and deleting -----------------------------------------------------

    async def list(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._list_sync, prefix)

    def _list_sync(self, prefix: str) -> builtins.list[str]:
        return sorted(self._walk(self._dir(prefix), prefix))

    def _walk(self, directory: Path | str, rel: str) -> Iterator[str]:
        """Keys of the regular files below `directory`; symlinks are not followed."""
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            key = rel + entry.name
            if not _is_key(key):  # temporary files and foreign names
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(entry.path, key + "/")
            elif entry.is_file(follow_symlinks=False):
                yield key

    async def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        return await asyncio.to_thread(self._list_dirs_sync, prefix)

    def _list_dirs_sync(self, prefix: str) -> builtins.list[str]:
        # Like an S3 delimiter listing, a directory counts only if an object lies below it.
        base = self._dir(prefix)
        try:
            entries = list(os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            e.name for e in entries
            if e.is_dir(follow_symlinks=False) and _is_key(prefix + e.name)
            and next(self._walk(e.path, prefix + e.name + "/"), None) is not None
        )

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete_sync, key)

    def _delete_sync(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as e:
            raise StoreUnavailable(f"cannot delete {key!r}: {e.strerror}") from e
        self._prune(path.parent)

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix_sync, prefix)

    def _delete_prefix_sync(self, prefix: str) -> int:
        base = self._dir(prefix)
        count = 0
        for key in self._list_sync(prefix):
            with contextlib.suppress(FileNotFoundError):
                (self.root / key).unlink()
                count += 1
        for directory, _dirs, _files in os.walk(base, topdown=False):
            with contextlib.suppress(OSError):  # not empty: something else lives there
                if Path(directory) != self.root:
                    os.rmdir(directory)
        self._prune(base.parent)
        return count

    def _prune(self, directory: Path) -> None:
        """Remove empty directories from `directory` up to (not including) the root."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # --- the rest -----------------------------------------------------------------

    async def presign(self, key: str, expires: int, filename: str | None = None) -> str:
        raise Unsupported("the local store cannot make presigned URLs; use the s3 backend")

    async def ping(self) -> None:
        await asyncio.to_thread(self._ping_sync)

    def _ping_sync(self) -> None:
        """The root exists (made if missing) and a file can be created in it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise StoreUnavailable(f"store root {str(self.root)!r} is not writable: {e}") from e

    async def close(self) -> None:
        return None


@contextlib.contextmanager
def _translated(key: str) -> Iterator[None]:
    """Map the file system's errors for one key onto the store's."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise NotFound(key) from None
    except OSError as e:  # ELOOP (a symlink swapped in), EACCES, EIO, ...
        raise StoreUnavailable(f"cannot read {key!r}: {e.strerror}") from e
