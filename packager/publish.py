"""Publishing a packaged version atomically.

Order (DESIGN.md decision 4): media objects, then media playlists, then the MPD and the
multivariant playlist, then the asset record last: the record is the commit point. A
failure or cancellation removes the version's objects and puts back the entry manifests
it replaced, so viewers never see a half-published asset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manifests import dash, hls, layout, subtitles
from manifests.model import Presentation
from storage.base import Store
from storage.content_types import content_type_for
from storage.errors import Conflict, NotFound, StoreUnavailable

UPLOAD_CONCURRENCY = 8
RECORD_ATTEMPTS = 40  # conditional writes of a record before giving up (each loser re-reads)
RECORD_BACKOFF = (0.005, 0.25)  # seconds: a loser waits up to first * 2**attempt, capped


def new_version() -> str:
    """Sortable by creation time (hex seconds), unique by a random suffix."""
    return f"{int(time.time()):09x}{secrets.token_hex(3)}"


@dataclass
class Bundle:
    """Everything one version publishes, by path relative to the asset root."""

    files: list[tuple[str, Path]] = field(default_factory=list)  # media objects on disk
    playlists: dict[str, str] = field(default_factory=dict)  # immutable texts under v/
    entry: dict[str, str] = field(default_factory=dict)  # master.m3u8, manifest.mpd

    def add_manifests(self, p: Presentation) -> None:
        """Every media (and I-frame) playlist of `p`, its MPD and multivariant playlist.

        All media playlists carry one EXT-X-TARGETDURATION (RFC 8216 §6.2.4).
        """
        target = hls.presentation_target(p)
        for r in p.renditions:
            self.playlists[r.playlist_uri] = hls.media_playlist(r, target=target)
            if r.content_type == "video":
                self.playlists[r.iframe_playlist_uri] = hls.iframe_playlist(r)
        if p.text is not None:  # the transcript's subtitles rendition (issue 14)
            self.playlists[p.text.playlist_uri] = subtitles.media_playlist(p.text, target)
        self.entry[layout.MPD] = dash.mpd(p)
        self.entry[layout.MASTER] = hls.multivariant_playlist(p)


async def read_record(store: Store, asset_id: str) -> dict[str, Any] | None:
    try:
        data = await store.get(layout.key(asset_id, layout.RECORD))
    except NotFound:
        return None
    return _parsed(data)


def _parsed(data: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


async def update_record(store: Store, asset_id: str,
                        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                        ) -> dict[str, Any] | None:
    """Read, change and write the asset record as one step against every other writer
    (another worker, replica or job): `change(stored)` (None: no record) returns the
    record to write, or None to write nothing; the write happens only if the record is
    still the one read, else it is read and changed again. This is the only way records
    are written, so none of two writers' changes is lost. Returns what was written (or
    the stored record, when `change` wrote nothing)."""
    key = layout.key(asset_id, layout.RECORD)
    for attempt in range(RECORD_ATTEMPTS):
        try:
            data, tag = await store.get_tagged(key)
            stored = _parsed(data)
        except NotFound:
            stored, tag = None, None
        new = change(None if stored is None else dict(stored))
        if new is None:
            return stored
        try:
            await store.put_if(key, json.dumps(new, indent=2).encode(), "application/json", tag)
            return new
        except Conflict:
            first, cap = RECORD_BACKOFF
            await asyncio.sleep(random.uniform(0, min(cap, first * 2 ** attempt)))
    raise StoreUnavailable(f"the record of {asset_id!r} kept changing: not written")


async def _put_all(store: Store, asset_id: str, bundle: Bundle,
                   on_progress: Callable[[float], None]) -> None:
    sem = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    total = max(1, len(bundle.files))
    done = 0
    stopping = False

    async def put(rel: str, path: Path) -> None:
        nonlocal done
        async with sem:
            if stopping:
                return
            await store.put_file(layout.key(asset_id, rel), path, content_type_for(rel))
        done += 1
        on_progress(done / total)

    # Uploads run in the store's threads, which a cancelled task cannot stop: on a failure
    # or a cancellation, let the uploads already under way finish (queued ones are dropped)
    # so that the clean-up that follows removes everything that was written.
    tasks = [asyncio.create_task(put(rel, path)) for rel, path in bundle.files]
    try:
        if tasks:
            finished, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in finished:
                t.result()
    except BaseException:
        stopping = True
        await asyncio.wait(tasks)
        raise
    for rel, text in bundle.playlists.items():  # a handful; one at a time, as above
        await store.put_bytes(layout.key(asset_id, rel), text.encode(), content_type_for(rel))


async def publish(store: Store, asset_id: str, version: str, bundle: Bundle,
                  record: dict[str, Any], *, keep_versions: int,
                  on_progress: Callable[[float], None] = lambda f: None,
                  inherit: tuple[str, ...] = ()) -> dict[str, Any]:
    """Returns the record written: `record`, with the fields named in `inherit` as the
    stored record has them at the commit (a PATCH by another worker during the job)."""
    previous_entry: dict[str, bytes | None] = {}

    def commit(stored: dict[str, Any] | None) -> dict[str, Any]:
        kept = {k: stored[k] for k in inherit if stored is not None and k in stored}
        return {**record, **kept}
    try:
        await _put_all(store, asset_id, bundle, on_progress)
        for rel in bundle.entry:
            try:
                previous_entry[rel] = await store.get(layout.key(asset_id, rel))
            except NotFound:
                previous_entry[rel] = None
        for rel, text in bundle.entry.items():
            await store.put_bytes(layout.key(asset_id, rel), text.encode(), content_type_for(rel))
        written = await update_record(store, asset_id, commit)
    except BaseException:
        await asyncio.shield(_undo(store, asset_id, version, previous_entry))
        raise
    await prune_versions(store, asset_id, keep_versions)
    assert written is not None
    return written


async def _undo(store: Store, asset_id: str, version: str,
                previous_entry: dict[str, bytes | None]) -> None:
    # Best effort: the record was not written, so nothing committed points at this version.
    for rel, old in previous_entry.items():
        key = layout.key(asset_id, rel)
        with contextlib.suppress(Exception):
            if old is None:
                await store.delete(key)
            else:
                await store.put_bytes(key, old, content_type_for(rel))
    with contextlib.suppress(Exception):
        await store.delete_prefix(layout.key(asset_id, layout.version_dir(version)) + "/")


async def prune_versions(store: Store, asset_id: str, keep: int) -> list[str]:
    """Remove all but the newest `keep` versions of an asset; returns the removed ones."""
    versions = await store.list_dirs(layout.key(asset_id, layout.VERSIONS_DIR) + "/")
    removed = sorted(versions)[:-keep] if keep > 0 else []
    for v in removed:
        await store.delete_prefix(layout.key(asset_id, layout.version_dir(v)) + "/")
    return removed
