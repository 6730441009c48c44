"""The live streams one origin process owns: create, look up, seal, recover.

This is the narrow interface behind which a stream's state lives: `create`, `get`,
`recover` and `close`. Everything durable is in the store as it happens (init segments,
parts, segments, and the record with `state: "live"`), so a stream whose process died is
sealed from the store by the next origin that starts (`recover`); a deployment of several
origins (a later issue) can put a directory of owners in front of `get`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from manifests import layout
from manifests.dash_live import LiveRepresentation
from manifests.llhls import live_multivariant
from packager import publish, record
from packager.errors import InvalidInput, PackagerError
from packager.live import formats, seal
from packager.live.plan import LivePlan, make_plan
from packager.live.publish import SegmentWriter, subs_dir
from packager.live.stream import LiveStream
from packager.transcript.cues import Transcript
from settings import AudioRung, Config
from storage.errors import Conflict

log = logging.getLogger("sori.live")

# Container and coding overhead over the nominal AAC bitrate, for BANDWIDTH while live
# (the real peak replaces it at sealing): ADTS-free CMAF costs ~100 bytes per part.
_BANDWIDTH_HEADROOM = 1.3
# Keys of the streams that are live (one empty object each), so a starting origin finds
# what a stopped one left live in one listing; never an asset (ids start with a letter
# or digit), so never listed or served.
MARKERS = ".live/"
LINGER = 30.0  # seconds a sealed stream stays registered, for requests in flight


def owner_id() -> str:
    """Who produces a live stream: this machine and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_gone(owner: str) -> bool:
    """True when the process that produced a stream is not running any more. A stream
    of another machine is its own origins' business (several origins: a later issue);
    one without an owner (an older record) counts as gone."""
    host, _, pid = owner.rpartition(":")
    if not host or not pid.isdigit():
        return True
    if host != socket.gethostname():
        return False
    if int(pid) == os.getpid():
        return True  # this process: it was not in the registry, so nobody produces it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class AssetExists(InvalidInput):
    """The id is taken by another asset (409)."""


class StillLive(InvalidInput):
    """What exists only once a live stream has been sealed (its download) (409)."""


def bandwidth_bound(rung: AudioRung, plan: LivePlan) -> int:
    overhead = 8 * 200 / float(plan.part)  # moof + trun per part, generously
    return int(math.ceil(rung.bitrate * _BANDWIDTH_HEADROOM + overhead))


class LiveRegistry:
    def __init__(self, store: Any, cfg: Config) -> None:
        self.store = store
        self.cfg = cfg
        self.rungs = list(cfg.packager.audio_ladder)
        self.plan = make_plan([r.sample_rate for r in self.rungs], cfg.live.part_duration,
                              cfg.live.segment_duration)
        self.streams: dict[str, LiveStream] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self._creating: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Where other workers and replicas reach this process for its streams (origin.live
        # sets it once its internal address listens); written in each stream's marker.
        self.peer_url: str | None = None

    def owns(self, asset_id: str) -> bool:
        """This process has the stream, or is creating it (its marker may already be in
        the store while the stream is not yet registered)."""
        return asset_id in self.streams or asset_id in self._creating

    def get(self, asset_id: str) -> LiveStream | None:
        return self.streams.get(asset_id)

    def representations(self, version: str) -> list[LiveRepresentation]:
        return [LiveRepresentation(r.id, bandwidth_bound(r, self.plan), "mp4a.40.2",
                                   r.sample_rate, r.channels, layout.rendition_dir(version, r.id))
                for r in self.rungs]

    def master_text(self, version: str, subtitles: bool = False) -> str:
        """While live; with `subtitles`, the stream's WebVTT rendition (issue 14) too."""
        return live_multivariant(
            ((f"{layout.rendition_dir(version, r.id)}/{layout.MEDIA_PLAYLIST}",
              bandwidth_bound(r, self.plan), "mp4a.40.2") for r in self.rungs),
            subtitles=f"{subs_dir(version)}/{layout.MEDIA_PLAYLIST}" if subtitles else None)

    async def create(self, asset_id: str, *, title: str | None, fmt: formats.StreamFormat,
                     access: str = "public", transcript: bool = False) -> dict[str, Any]:
        if self.owns(asset_id):
            raise AssetExists(f"asset {asset_id!r} already exists")
        self._creating.add(asset_id)
        try:
            if await publish.read_record(self.store, asset_id) is not None:
                raise AssetExists(f"asset {asset_id!r} already exists")
            version = publish.new_version()
            stream = LiveStream(asset_id, version, self.store, self.plan, self.rungs, fmt,
                                self.cfg.live, self.cfg.packager, self._on_seal,
                                transcript=transcript)
            if transcript:
                stream.on_segment = SegmentWriter(self.store)
            await stream.open()
            rec = self._record(stream, title or asset_id, fmt, access)
            written = False
            try:
                # The record first, written only if there is none: of two workers or
                # replicas creating one id at once, one wins, and the other writes
                # nothing more (its marker and master playlist least of all).
                await self.store.put_if(layout.key(asset_id, layout.RECORD),
                                        json.dumps(rec, indent=2).encode(), "application/json",
                                        None)
                written = True
                await self._mark(asset_id)
                await self.store.put_bytes(layout.key(asset_id, layout.MASTER),
                                           self.master_text(version, transcript).encode(),
                                           "application/vnd.apple.mpegurl")
            except BaseException as e:
                await asyncio.shield(self._undo_open(stream, written))
                if isinstance(e, Conflict):
                    raise AssetExists(f"asset {asset_id!r} already exists") from None
                raise
            self.records[asset_id] = rec
            self.streams[asset_id] = stream
            log.info("live %s: created (version %s, parts %.3f s, segments %.3f s)", asset_id,
                     version, float(self.plan.part), float(self.plan.segment))
            return rec
        finally:
            self._creating.discard(asset_id)

    async def _undo_open(self, stream: LiveStream, written: bool) -> None:
        """Stop a stream that was opened but not created and remove what it wrote: its init
        segments, and, if its record was written (`written`), the asset."""
        with contextlib.suppress(Exception):
            await stream.abort()
        stream.cleanup()
        with contextlib.suppress(Exception):
            if written:
                await self.store.delete(layout.key(stream.asset_id, layout.RECORD))
                await self.store.delete_prefix(f"{stream.asset_id}/")
                await self._unmark(stream.asset_id)
            else:
                await self.store.delete_prefix(
                    layout.key(stream.asset_id, layout.version_dir(stream.version)) + "/")

    def _record(self, stream: LiveStream, title: str, fmt: formats.StreamFormat,
                access: str) -> dict[str, Any]:
        now = record.now_rfc3339()
        aid = stream.asset_id
        return {
            "id": aid, "title": title, "kind": "audio", "state": "live", "duration": 0.0,
            "created": now, "updated": now, "version": stream.version,
            "hls": record.media_url(aid, layout.MASTER), "dash": record.media_url(aid, layout.MPD),
            "download": f"/v1/assets/{aid}/download",
            "segment_duration": float(self.plan.segment),
            "renditions": [{"id": r.id, "type": "audio", "bandwidth": bandwidth_bound(r, self.plan),
                            "codecs": "mp4a.40.2", "sample_rate": r.sample_rate,
                            "channels": r.channels} for r in self.rungs],
            "access": access,
            "size": 0,
            "source": {"name": "live", "format": fmt.to_json()},
            "live": {"events": f"/v1/live/{aid}/events", "part_target": float(self.plan.part_target),
                     "part_duration": float(self.plan.part),
                     "segment_duration": float(self.plan.segment),
                     "target_duration": self.plan.target_duration,
                     "start": None, "started": None, "owner": owner_id(),
                     "transcript": stream.captions is not None},
        }

    def record_of(self, stream: LiveStream) -> dict[str, Any]:
        """The record as it stands, with the live figures of the moment."""
        rec = dict(self.records[stream.asset_id])
        rec["duration"] = round(stream.published_seconds, 3)
        rec["state"] = stream.state if stream.state != "sealing" else "live"
        live = dict(rec["live"])
        live.update(producer=stream.producer, media_seconds=round(stream.published_seconds, 3),
                    start=stream.start, started=stream.status()["started"])
        rec["live"] = live
        return rec

    async def started(self, stream: LiveStream) -> None:
        """Persist the stream's clock (its first byte) so a recovery keeps its PDT."""
        rec = self.records[stream.asset_id]
        rec["live"] = dict(rec["live"], start=stream.start, started=stream.status()["started"])

        def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            if stored is None or stored.get("version") != stream.version:
                return None  # deleted (or replaced) meanwhile: nothing to note
            return record.patched_from(stored, rec)  # as the seal does

        with contextlib.suppress(Exception):
            await publish.update_record(self.store, stream.asset_id, change)

    async def append(self, stream: LiveStream, seq: int | None, data: bytes, *,
                     text: str | None = None, cues: Transcript | None = None) -> bool:
        first = stream.start is None
        taken = await stream.append(seq, data, text=text, cues=cues)
        if first and stream.start is not None:
            self._spawn(self.started(stream))
        return taken

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end(self, stream: LiveStream, reason: str = "end") -> dict[str, Any]:
        """End and seal; returns the sealed record. Raises InvalidInput when the stream
        never carried audio (the asset is then removed)."""
        try:
            await stream.end(reason=reason)
        except InvalidInput:  # no audio ever: nothing to keep
            await self.discard(stream)
            raise
        except PackagerError:
            # Sealing failed: what was published stays where it is (the store still says
            # live, its marker too), for the next origin to start to seal it (`recover`).
            log.error("live %s: could not be sealed; left for the next start", stream.asset_id)
            if self.streams.get(stream.asset_id) is stream:
                del self.streams[stream.asset_id]
            stream.cleanup()
            raise
        return self.records[stream.asset_id]

    async def _on_seal(self, stream: LiveStream, reason: str) -> None:
        stream.state = "sealing"
        rec = self.records[stream.asset_id]
        rec["live"] = dict(rec["live"], start=stream.start)
        silence = stream.silence_frames / stream._rate if stream._rate else 0.0
        padding = stream.padding_frames / stream._rate if stream._rate else 0.0
        if isinstance(stream.on_segment, SegmentWriter):
            await stream.on_segment.drain()  # subs_ready settled before the rest is sealed
        try:
            new = await seal.seal(self.store, rec, stream.spool, reason=reason,
                                  silence_seconds=silence, padding_seconds=padding,
                                  download_rendition=self.cfg.packager.download_rendition,
                                  captions=stream.captions, subs_written=stream.subs_ready)
        except BaseException:
            stream.state = "failed"
            stream.ended.set()
            stream._wake()
            raise
        self.records[stream.asset_id] = new
        await self._unmark(stream.asset_id)
        stream.state = "ready"
        stream.ended.set()
        stream._wake()
        log.info("live %s: sealed (%s), %.1f s, %.1f s of silence inserted", stream.asset_id,
                 reason, new["duration"], silence)
        self._spawn(self._forget_later(stream))

    async def _forget_later(self, stream: LiveStream) -> None:
        await asyncio.sleep(LINGER)
        if self.streams.get(stream.asset_id) is stream:
            del self.streams[stream.asset_id]
        stream.cleanup()

    async def discard(self, stream: LiveStream) -> None:
        """A stream that never carried audio leaves nothing behind."""
        if stream.state in ("live", "failed"):
            await stream.abort()
        stream.state = "failed"
        stream.ended.set()
        stream._wake()
        self.streams.pop(stream.asset_id, None)
        self.records.pop(stream.asset_id, None)
        with contextlib.suppress(Exception):
            await self.store.delete(layout.key(stream.asset_id, layout.RECORD))
            await self.store.delete_prefix(f"{stream.asset_id}/")
        await self._unmark(stream.asset_id)
        stream.cleanup()

    # --- start-up and shutdown ---------------------------------------------------------

    async def recover(self) -> list[str]:
        """Seal every stream the store still says is live whose producing process is gone.
        Each live stream leaves a marker under MARKERS while it is live, so this is one
        listing, not a read of every record."""
        sealed = []
        for key in await self.store.list(MARKERS):
            asset_id = key[len(MARKERS):]
            if not layout.is_valid_asset_id(asset_id) or asset_id in self.streams:
                continue
            rec = await publish.read_record(self.store, asset_id)
            if rec is None or rec.get("state") != "live":
                await self._unmark(asset_id)  # sealed or deleted meanwhile
                continue
            if not owner_gone(str((rec.get("live") or {}).get("owner", ""))):
                continue  # another process on this machine is producing it
            try:
                await self.recover_one(rec)
                sealed.append(asset_id)
            except Exception as e:  # one bad asset must not stop the origin
                log.error("live %s: could not be sealed after a restart: %s", asset_id, e)
        return sealed

    def marker_body(self) -> bytes:
        """A stream's directory entry: its owner, the owner's internal URL and a heartbeat
        time (origin.live.directory reads it; an older marker is the bare owner)."""
        return json.dumps({"owner": owner_id(), "url": self.peer_url,
                           "beat": round(time.time(), 3)}).encode()

    async def _mark(self, asset_id: str) -> None:
        await self.store.put_bytes(f"{MARKERS}{asset_id}", self.marker_body(), "application/json")

    async def heartbeat(self) -> None:
        """Rewrite the marker of every stream this process is producing (its heartbeat).
        A marker rewritten while its stream was being sealed is removed again."""
        for stream in list(self.streams.values()):
            if stream.state != "live":
                continue
            try:
                await self._mark(stream.asset_id)
            except Exception as e:  # the store may be away for a moment
                log.warning("live %s: heartbeat not written: %s", stream.asset_id, e)
                continue
            if stream.state in ("ready", "failed"):
                await self._unmark(stream.asset_id)

    async def _unmark(self, asset_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.store.delete(f"{MARKERS}{asset_id}")

    async def recover_one(self, rec: dict[str, Any]) -> dict[str, Any]:
        asset_id = rec["id"]
        with tempfile.TemporaryDirectory(prefix="sori-recover-") as tmp:
            spool = Path(tmp)
            try:
                await seal.fetch_spool(self.store, rec, spool)
            except PackagerError:
                log.warning("live %s: nothing was published; removing it", asset_id)
                await self.store.delete(layout.key(asset_id, layout.RECORD))
                await self.store.delete_prefix(f"{asset_id}/")
                await self._unmark(asset_id)
                raise
            live = dict(rec.get("live", {}))
            if live.get("start") is None:
                live["start"] = time.time()
            rec = dict(rec, live=live)
            new = await seal.seal(self.store, rec, spool, reason="recovered",
                                  silence_seconds=0.0,
                                  download_rendition=self.cfg.packager.download_rendition)
        await self._unmark(asset_id)
        log.info("live %s: sealed after a restart, %.1f s", asset_id, new["duration"])
        return new

    async def close(self) -> None:
        """Stop every stream without sealing: they stay live in the store, and the next
        origin to start seals them (`recover`)."""
        for stream in list(self.streams.values()):
            if stream.state == "live":
                await stream.abort()
            stream.cleanup()
        self.streams.clear()
        for task in list(self._tasks):
            task.cancel()
