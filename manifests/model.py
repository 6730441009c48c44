"""The presentation model: asset → renditions → segments, as measured from the real bytes.

Every manifest is rendered from this model; nominal values (configured bitrates,
ffmpeg's own playlists) never reach one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from manifests import layout

AAC_FAMILY = "mp4a"


def codec_family(codecs: str) -> str:
    """The family of an RFC 6381 codec string: its sample entry type ('mp4a', 'opus')."""
    return codecs.split(".", 1)[0].lower()


@dataclass(frozen=True)
class Segment:
    number: int  # 1-based, as DASH $Number$
    start: int  # baseMediaDecodeTime of the first fragment, in the rendition timescale
    duration: int  # sum of sample durations, in the rendition timescale
    size: int  # bytes of the segment object
    # I-frame playlists (video): from the first moof to the end of its first (sync) sample
    iframe_offset: int = 0
    iframe_length: int = 0
    starts_with_sync: bool = True


@dataclass(frozen=True)
class Rendition:
    id: str
    content_type: str  # "audio" | "video"
    codecs: str
    timescale: int
    segments: tuple[Segment, ...]
    dir: str  # path relative to the asset root, e.g. "v/<version>/low"
    init_size: int = 0
    sample_rate: int = 0
    channels: int = 0
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0
    language: str = "und"

    @property
    def init_uri(self) -> str:
        return f"{self.dir}/{layout.INIT}"

    @property
    def playlist_uri(self) -> str:
        return f"{self.dir}/{layout.MEDIA_PLAYLIST}"

    @property
    def iframe_playlist_uri(self) -> str:
        return f"{self.dir}/{layout.IFRAME_PLAYLIST}"

    def segment_uri(self, seg: Segment) -> str:
        return f"{self.dir}/{layout.segment_name(seg.number)}"

    def seconds(self, ticks: int) -> float:
        return ticks / self.timescale

    @property
    def duration(self) -> float:
        return self.seconds(sum(s.duration for s in self.segments))


@dataclass(frozen=True)
class TextTrack:
    """A subtitles rendition (issue 14): WebVTT segments aligned one to one with the media
    segments (HLS), and the whole transcript as one WebVTT file (DASH, side-loaded)."""

    dir: str  # path relative to the asset root, e.g. "v/<version>/subs"
    segment_durations: tuple[float, ...]  # seconds, those of the media segments
    whole_uri: str  # the whole transcript's WebVTT, relative to the asset root
    bandwidth: int  # bits/s of the whole file over the presentation (DASH @bandwidth)
    language: str = "und"  # BCP 47
    name: str = "Transcript"
    first_number: int = 1

    @property
    def playlist_uri(self) -> str:
        return f"{self.dir}/{layout.MEDIA_PLAYLIST}"


@dataclass(frozen=True)
class Presentation:
    asset_id: str
    kind: str  # "audio" | "video"
    segment_duration: float  # the configured target, seconds
    renditions: tuple[Rendition, ...]
    title: str = ""
    extras: dict[str, str] = field(default_factory=dict)  # poster, thumbnails, ...
    text: TextTrack | None = None  # subtitles from the transcript (issue 14)
    chapters_uri: str = ""  # Apple's chapters JSON, relative to the asset root (issue 14)

    @property
    def audio(self) -> tuple[Rendition, ...]:
        return tuple(r for r in self.renditions if r.content_type == "audio")

    @property
    def video(self) -> tuple[Rendition, ...]:
        return tuple(r for r in self.renditions if r.content_type == "video")

    @property
    def audio_sets(self) -> tuple[tuple[Rendition, ...], ...]:
        """The audio renditions grouped by codec family, AAC first (then each other family
        in the order its first rendition comes: the Opus data-saver rung of issue 14).

        A player adapts within one family and starts on the first: AAC-LC, which every
        device decodes; the others are alternatives a player may pick or skip."""
        groups: dict[str, list[Rendition]] = {}
        for r in self.audio:
            groups.setdefault(codec_family(r.codecs), []).append(r)
        order = sorted(groups, key=lambda fam: fam != AAC_FAMILY)  # stable: AAC, then others
        return tuple(tuple(groups[fam]) for fam in order)

    @property
    def duration(self) -> float:
        main = self.video or self.audio
        return max((r.duration for r in main), default=0.0)
