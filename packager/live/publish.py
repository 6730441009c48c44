"""The output side of a live stream: the encoder's frames cut into parts, stored, published.

    encoder (ADTS per rung) ─> RungCutter per rung ─> a part ready on every rung
       ─> CMAF fragments ─> the store (parts, and the segment a part completes), then
       the model (RungState) ─> `on_part` (the stream wakes its waiters)

A part is published once every rung has cut it, in order, and only after its bytes (and
those of the segment it completes) are in the store: a playlist never lists, and a
blocking reload is never answered for, a part the store does not hold yet.

A stream with a transcript (issue 14) also gets a WebVTT segment as each media segment
closes (`SegmentWriter`): segment N covers the media time of segment N of the first rung
(the rungs are cut at the same times), goes to the store as soon as that segment is there,
numbered like it (`subs/seg_NNNNN.vtt`), with the X-TIMESTAMP-MAP rule of VOD
(packager.transcript.segment: MPEGTS is the first tfdt, 0 for live audio), and like every
object under the version never changes once written (sealing writes only the rest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from manifests import layout
from packager.audio import aac_cmaf
from packager.live.encoder import LiveEncoder
from packager.live.plan import LivePlan
from packager.live.track import RungCutter, RungState
from packager.transcript import segment
from settings import AudioRung
from storage.base import Store
from storage.content_types import content_type_for
from storage.local import LocalStore

if TYPE_CHECKING:
    from packager.live.stream import LiveStream

log = logging.getLogger("sori.live")

Ready = tuple[int, int, list[bytes]]  # (part index, first frame, raw AAC frames)


class Publisher:
    """Stores and publishes the parts of every rung of one stream."""

    def __init__(self, asset_id: str, store: Store, plan: LivePlan,
                 rungs_state: list[RungState], spool: Path, on_part: Callable[[], None],
                 on_error: Callable[[str], None]) -> None:
        self.asset_id = asset_id
        self.store = store
        self.plan = plan
        self.rungs_state = rungs_state
        self.spool = spool  # init segments and segments, for sealing
        self.on_part = on_part
        self.on_error = on_error
        self.published_parts = 0
        self.end_part: int | None = None  # parts from this one on are dropped (the end)
        self._cutters: list[RungCutter] = []
        self._ready: list[list[Ready]] = [[] for _ in rungs_state]
        self._publishing = False

    async def write_init(self, rungs: list[AudioRung]) -> None:
        """The init segments (known before any audio: AAC-LC at each rung's rate)."""
        for r, st in zip(rungs, self.rungs_state, strict=True):
            index = aac_cmaf.SAMPLE_RATES.index(r.sample_rate)
            init = aac_cmaf.init_segment(aac_cmaf.AdtsConfig(2, index, r.channels), r.channels,
                                         r.bitrate, r.bitrate)
            st.init_size = len(init)
            rel = f"{st.dir}/{layout.INIT}"
            (self.spool / r.id).mkdir(parents=True, exist_ok=True)
            (self.spool / r.id / layout.INIT).write_bytes(init)
            await self.store.put_bytes(layout.key(self.asset_id, rel), init, content_type_for(rel))

    def follow(self, encoder: LiveEncoder) -> list[asyncio.Task[None]]:
        """One task per rung reading the encoder's output until it ends."""
        self._cutters = [RungCutter(self.plan, r.sample_rate) for r in encoder.rungs]
        return [asyncio.create_task(self._read_rung(encoder, i),
                                    name=f"live-rung-{self.asset_id}-{i}")
                for i in range(len(encoder.rungs))]

    async def _read_rung(self, encoder: LiveEncoder, i: int) -> None:
        cutter = self._cutters[i]
        try:
            async for batch in encoder.frames(i):
                done = False
                for cfg, frame in batch:
                    part = cutter.add(cfg, frame)
                    if part is not None:
                        self._ready[i].append((part.index, part.start_frame, part.frames))
                        done = True
                if done:
                    await self._publish_ready()
        except aac_cmaf.AdtsError as e:
            self.on_error(f"encoder output unreadable: {e}")
        # End of the encoder's output: what is left is the tail of the last part.
        if cutter.pending:
            self._ready[i].append((cutter.part, cutter.start, cutter.pending))
            cutter.pending = []
        await self._publish_ready()

    async def _publish_ready(self) -> None:
        """Publish every part that all rungs have finished, in order."""
        while all(self._ready) and not self._publishing:
            self._publishing = True
            try:
                batch = [q.pop(0) for q in self._ready]
                index = batch[0][0]
                if self.end_part is not None and index >= self.end_part:
                    continue
                await self._publish_part(index, batch)
            finally:
                self._publishing = False

    async def _publish_part(self, index: int, batch: list[Ready]) -> None:
        """Store the part of every rung (and the segment it completes), then add it to the
        model."""
        number, k = self.plan.locate(index)
        last_of_segment = (k == self.plan.parts_in(number) - 1
                           or (self.end_part is not None and index == self.end_part - 1))
        made: list[tuple[RungState, str, bytes, int, int]] = []
        for st, (_idx, start_frame, frames) in zip(self.rungs_state, batch, strict=True):
            data = aac_cmaf.media_segment(index + 1, start_frame * aac_cmaf.SAMPLES_PER_FRAME,
                                          frames, styp=(k == 0))
            made.append((st, st.part_rel(number, k), data,
                         start_frame * aac_cmaf.SAMPLES_PER_FRAME,
                         len(frames) * aac_cmaf.SAMPLES_PER_FRAME))
        objects = [(rel, data) for _st, rel, data, _t, _n in made]
        closing: list[tuple[RungState, int, bytes]] = []
        if last_of_segment:
            closing = [(st, st.next_number, b"".join(st.open_bytes) + data)
                       for st, _rel, data, _t, _n in made]
            objects += [(st.segment_rel(n), seg) for st, n, seg in closing]
        await self._put(objects)
        for st, n, seg in closing:
            (self.spool / st.rung_id / layout.segment_name(n)).write_bytes(seg)
        for st, rel, data, start_tick, ticks in made:
            st.add_part(rel, data, start_tick, ticks)
            if last_of_segment:
                st.close_segment()
        self.published_parts = index + 1
        self.on_part()

    async def _put(self, objects: list[tuple[str, bytes]]) -> None:
        """Store objects (paths relative to the asset): a local store writes them all in
        one worker thread (LocalStore.put_many), any other store one request each."""
        keyed = [(layout.key(self.asset_id, rel), data) for rel, data in objects]
        if isinstance(self.store, LocalStore):
            await self.store.put_many(keyed)
        else:
            await asyncio.gather(*(self.store.put_bytes(key, data, content_type_for(key))
                                   for key, data in keyed))


def subs_dir(version: str) -> str:
    return f"{layout.version_dir(version)}/{layout.SUBTITLES_DIR}"


HOLD_FOR_CUE_END = 2  # target durations a WebVTT segment may wait for a cue's end to be known


class SegmentWriter:
    """The stream's `on_segment`: writes the WebVTT segments of closed media segments, in
    order, one task at a time; `stream.subs_ready` counts those in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._task: asyncio.Task[None] | None = None

    def __call__(self, stream: LiveStream) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(stream),
                                             name=f"live-subs-{stream.asset_id}")

    async def _run(self, stream: LiveStream) -> None:
        captions = stream.captions
        assert captions is not None
        st = stream.rungs_state[0]
        while stream.subs_ready < len(st.segments):
            await stream.between_chunks()  # the text of the audio in this segment is in
            s = st.segments[stream.subs_ready]
            # A cue shown in this window whose audio has not all come yet (a timed cue: its
            # end is ahead of what was sent) would be written with the end it has if no
            # silence is inserted before it: wait for its audio, a while at most.
            deadline = asyncio.get_running_loop().time() + HOLD_FOR_CUE_END * stream.plan.target_duration
            while captions.unresolved(s.start / st.rate, (s.start + s.duration) / st.rate) \
                    and stream.producer != "ended" and not stream.ended.is_set():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                await stream.wait_change(min(left, 0.25))
            text = captions.segment_text(s.number, s.start / st.rate,
                                         (s.start + s.duration) / st.rate,
                                         segment.mpegts(0, st.rate))
            rel = f"{subs_dir(stream.version)}/{layout.subtitle_segment_name(s.number)}"
            try:
                await self.store.put_bytes(layout.key(stream.asset_id, rel), text.encode(),
                                           content_type_for(rel))
            except Exception as e:  # the store is away: the next segment tries again
                log.warning("live %s: subtitles segment %d not written: %s", stream.asset_id,
                            s.number, e)
                return
            stream.subs_ready += 1
            stream.notify()

    async def drain(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
