"""One rung of a live stream as it grows: frames cut into parts and segments (no I/O).

`RungCutter` takes the encoder's AAC frames (the priming frame dropped) and hands back
each part as soon as its last frame arrives, at the frame nearest the plan's part
boundary. `RungState` keeps what the playlists need: the completed segments of the
model, the part durations of each, the parts of the segment in progress and, for the
origin, the bytes of recent parts (served from memory while they are the live edge).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from manifests import layout
from manifests.llhls import LiveTrack
from manifests.model import Rendition, Segment
from packager.audio import aac_cmaf
from packager.live.plan import LivePlan

RECENT_PARTS = 64  # part objects kept in memory per rung (about 15 s at 0.23 s)


@dataclass
class CutPart:
    index: int  # global part index, 0-based
    start_frame: int
    frames: list[bytes]


class RungCutter:
    """Cuts one rung's frame stream at the plan's part boundaries."""

    def __init__(self, plan: LivePlan, rate: int) -> None:
        self.plan = plan
        self.rate = rate
        self.skip = 1  # the AAC encoder's priming frame
        self.count = 0  # frames kept so far
        self.part = 0
        self.start = 0
        self.pending: list[bytes] = []
        self.config: aac_cmaf.AdtsConfig | None = None

    def add(self, cfg: aac_cmaf.AdtsConfig, frame: bytes) -> CutPart | None:
        if self.skip:
            self.skip -= 1
            return None
        if self.config is None:
            self.config = cfg
        elif cfg != self.config:
            raise aac_cmaf.AdtsError("encoder changed its AAC configuration mid-stream")
        self.pending.append(frame)
        self.count += 1
        if self.count >= self.plan.part_end_frame(self.rate, self.part):
            done = CutPart(self.part, self.start, self.pending)
            self.part += 1
            self.start = self.count
            self.pending = []
            return done
        return None


@dataclass
class RungState:
    """What is published of one rung."""

    rung_id: str
    rate: int
    channels: int
    codecs: str
    dir: str  # rendition directory relative to the asset root
    init_size: int
    segments: list[Segment] = field(default_factory=list)
    seg_parts: list[tuple[int, ...]] = field(default_factory=list)
    open_parts: list[int] = field(default_factory=list)  # durations (ticks)
    open_bytes: list[bytes] = field(default_factory=list)  # the segment in progress
    open_start: int = 0  # tfdt of the segment in progress
    recent: OrderedDict[str, bytes] = field(default_factory=OrderedDict)

    @property
    def next_number(self) -> int:
        return self.segments[-1].number + 1 if self.segments else 1

    def add_part(self, rel: str, data: bytes, start_tick: int, ticks: int) -> None:
        if not self.open_parts:
            self.open_start = start_tick
        self.open_parts.append(ticks)
        self.open_bytes.append(data)
        self.recent[rel] = data
        while len(self.recent) > RECENT_PARTS:
            self.recent.popitem(last=False)

    def close_segment(self) -> tuple[int, bytes]:
        """Turn the parts in progress into a segment; returns (number, its bytes)."""
        number = self.next_number
        data = b"".join(self.open_bytes)
        self.segments.append(Segment(number=number, start=self.open_start,
                                     duration=sum(self.open_parts), size=len(data)))
        self.seg_parts.append(tuple(self.open_parts))
        self.open_parts = []
        self.open_bytes = []
        return number, data

    def snapshot(self) -> LiveTrack:
        rendition = Rendition(id=self.rung_id, content_type="audio", codecs=self.codecs,
                              timescale=self.rate, segments=tuple(self.segments), dir=self.dir,
                              init_size=self.init_size, sample_rate=self.rate,
                              channels=self.channels)
        return LiveTrack(rendition, tuple(self.seg_parts), tuple(self.open_parts))

    def has(self, msn: int, part: int | None) -> bool:
        """True once the playlist holds segment `msn` (complete, when `part` is None) or
        part `part` of it, or anything later (RFC 8216bis §6.2.5.2)."""
        if self.segments and msn <= self.segments[-1].number:
            return True
        if part is None or msn != self.next_number:
            return False
        return part < len(self.open_parts)

    def segment_rel(self, number: int) -> str:
        return f"{self.dir}/{layout.segment_name(number)}"

    def part_rel(self, number: int, index: int) -> str:
        return f"{self.dir}/{layout.part_name(number, index)}"
