"""Rendering HLS playlists (RFC 8216bis) from the presentation model.

URIs are relative: the multivariant playlist sits at the asset root, each media
playlist in its rendition's directory beside its segments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from manifests import layout, subtitles, tags
from manifests.bandwidth import average_bitrate, peak_bitrate
from manifests.model import Presentation, Rendition

AUDIO_GROUP = "audio"


def _attrs(pairs: Iterable[tuple[str, object]]) -> str:
    """An attribute list (§4.2): strings quoted, numbers bare; enumerated values pass as _Enum."""
    out = []
    for name, value in pairs:
        if isinstance(value, _Enum):
            out.append(f"{name}={value.text}")
        elif isinstance(value, str):
            out.append(f'{name}="{value}"')
        elif isinstance(value, float):
            out.append(f"{name}={value:.3f}")
        else:
            out.append(f"{name}={value}")
    return ",".join(out)


class _Enum:
    """An enumerated-string or resolution attribute value, written without quotes."""

    def __init__(self, text: str) -> None:
        self.text = text


def format_duration(seconds: float) -> str:
    """EXTINF's decimal-floating-point (§4.4.4.1), to the microsecond."""
    return f"{seconds:.6f}"


def target_duration(durations: Iterable[float]) -> int:
    """EXT-X-TARGETDURATION (§4.4.3.1).

    The spec requires every EXTINF rounded to the nearest integer to be at most the
    target; we take the ceiling of the longest segment so that no segment is longer
    than the target duration at all (a tolerance of 1 µs absorbs float noise).
    """
    longest = max(durations, default=1.0)
    return max(1, math.ceil(longest - 1e-6))


def segment_seconds(r: Rendition) -> list[float]:
    """The measured duration of each segment of `r`, in seconds (what EXTINF says)."""
    return [r.seconds(s.duration) for s in r.segments]


def shared_target(renditions: Iterable[Rendition]) -> int:
    """One EXT-X-TARGETDURATION for a set of renditions: the ceiling of their longest segment.

    For callers (live) whose renditions are not (yet) a Presentation.
    """
    return target_duration(d for r in renditions for d in segment_seconds(r))


def presentation_target(p: Presentation) -> int:
    """The EXT-X-TARGETDURATION every media playlist of `p` carries.

    RFC 8216 §6.2.4: "Each Media Playlist in each Variant Stream MUST have the same
    Target Duration"; only I-frame and subtitle playlists are exempt. So the target is
    taken over the segments of every audio and video rendition together, not per
    rendition (an AAC rendition's segments end on its own frame grid and may run a
    frame past the video's, or another rate's, and past the next whole second).
    """
    return shared_target((*p.audio, *p.video))


def _vod_header(r: Rendition, target: int, *, iframes_only: bool = False) -> list[str]:
    """The tags that open every VOD media playlist, up to and including EXT-X-MAP."""
    return [
        tags.EXTM3U,
        f"{tags.VERSION}:{tags.PLAYLIST_VERSION}",
        f"{tags.TARGETDURATION}:{target}",
        f"{tags.MEDIA_SEQUENCE}:{r.segments[0].number if r.segments else 1}",
        f"{tags.PLAYLIST_TYPE}:VOD",
        *([tags.I_FRAMES_ONLY] if iframes_only else []),
        tags.INDEPENDENT_SEGMENTS,
        f'{tags.MAP}:URI="{layout.INIT}"',
    ]


def media_playlist(r: Rendition, *, target: int | None = None, ended: bool = True) -> str:
    """A VOD media playlist of CMAF segments.

    `target` is the presentation's shared EXT-X-TARGETDURATION (`presentation_target`);
    None takes the rendition's own, which is right only for a rendition that is alone.
    A target below the rendition's own longest segment is refused (§4.4.3.1).
    """
    durations = segment_seconds(r)
    own = target_duration(durations)
    if target is None:
        target = own
    elif target < own:
        raise ValueError(f"target duration {target} s is shorter than a segment of {r.id} "
                         f"({max(durations):.6f} s)")
    lines = _vod_header(r, target)
    for seg, seconds in zip(r.segments, durations, strict=True):
        lines.append(f"{tags.EXTINF}:{format_duration(seconds)},")
        lines.append(layout.segment_name(seg.number))
    if ended:
        lines.append(tags.ENDLIST)
    return "\n".join(lines) + "\n"


def iframe_playlist(r: Rendition) -> str:
    """An I-frame playlist (§4.4.3.6): byte ranges into the same segments, one per IDR.

    Each range covers the segment's first moof and its first sample (the IDR frame
    that starts every video segment); its duration is that of the whole segment,
    up to the next I-frame. I-frame playlists are exempt from the shared target duration
    (RFC 8216 §6.2.4), so each keeps its own.
    """
    durations = segment_seconds(r)
    lines = _vod_header(r, target_duration(durations), iframes_only=True)
    for seg, seconds in zip(r.segments, durations, strict=True):
        lines.append(f"{tags.EXTINF}:{format_duration(seconds)},")
        lines.append(f"{tags.BYTERANGE}:{seg.iframe_length}@{seg.iframe_offset}")
        lines.append(layout.segment_name(seg.number))
    lines.append(tags.ENDLIST)
    return "\n".join(lines) + "\n"


def iframe_peak_bitrate(r: Rendition) -> int:
    """BANDWIDTH of an I-frame playlist: the largest I-frame over its segment's duration."""
    rates = [8 * s.iframe_length / r.seconds(s.duration) for s in r.segments if s.duration]
    return math.ceil(max(rates, default=0.0))


def iframe_average_bitrate(r: Rendition) -> int:
    total = r.seconds(sum(s.duration for s in r.segments))
    return math.ceil(8 * sum(s.iframe_length for s in r.segments) / total) if total else 0


def _audio_name(r: Rendition) -> str:
    return f"{r.id} ({round(r.sample_rate / 1000, 1):g} kHz)" if r.sample_rate else r.id


def audio_variant_order(p: Presentation) -> list[Rendition]:
    """The audio-only variants in the order the multivariant playlist lists them: the AAC
    ones by increasing bandwidth, then those of every other codec family (the Opus
    data-saver rung, issue 14), each family by increasing bandwidth.

    The first variant listed is where AVPlayer starts and what hls.js calls its first level
    (its default bandwidth estimate comes from it); a variant whose CODECS a client cannot
    decode is skipped (RFC 8216bis §4.4.6.2), so listing Opus last keeps AAC-LC the start
    for every client and leaves the data-saver rung to those that choose it.
    """
    seg = p.segment_duration
    return [r for family in p.audio_sets for r in sorted(family, key=lambda r: peak_bitrate(r, seg))]


def multivariant_playlist(p: Presentation) -> str:
    """The entry playlist: one variant per rendition (audio-only) or per video rendition
    with the audio renditions in one EXT-X-MEDIA group, plus I-frame variants."""
    seg = p.segment_duration
    lines = [tags.EXTM3U, f"{tags.VERSION}:{tags.PLAYLIST_VERSION}", tags.INDEPENDENT_SEGMENTS]
    lines += subtitles.multivariant_tags(p)  # subtitles rendition, chapters (issue 14)
    if not p.video:
        # Audio-only: each rendition is a variant (a level for hls.js), AAC first.
        for r in audio_variant_order(p):
            lines.append(f"{tags.STREAM_INF}:" + _attrs([
                ("BANDWIDTH", peak_bitrate(r, seg)),
                ("AVERAGE-BANDWIDTH", average_bitrate(r)),
                ("CODECS", r.codecs),
                *subtitles.stream_inf_attrs(p),
            ]))
            lines.append(r.playlist_uri)
        return "\n".join(lines) + "\n"

    audio = sorted(p.audio, key=lambda r: peak_bitrate(r, seg))
    for i, a in enumerate(audio):
        default = "YES" if i == len(audio) - 1 else "NO"
        lines.append(f"{tags.MEDIA}:" + _attrs([
            ("TYPE", _Enum("AUDIO")), ("GROUP-ID", AUDIO_GROUP), ("NAME", _audio_name(a)),
            ("LANGUAGE", a.language), ("DEFAULT", _Enum(default)), ("AUTOSELECT", _Enum("YES")),
            ("CHANNELS", str(a.channels or 2)), ("URI", a.playlist_uri),
        ]))
    audio_peak = max((peak_bitrate(a, seg) for a in audio), default=0)
    audio_avg = max((average_bitrate(a) for a in audio), default=0)
    audio_codecs = sorted({a.codecs for a in audio})
    for v in sorted(p.video, key=lambda r: peak_bitrate(r, seg)):
        attrs: list[tuple[str, object]] = [
            ("BANDWIDTH", peak_bitrate(v, seg) + audio_peak),
            ("AVERAGE-BANDWIDTH", average_bitrate(v) + audio_avg),
            ("CODECS", ",".join([v.codecs, *audio_codecs])),
            ("RESOLUTION", _Enum(f"{v.width}x{v.height}")),
            ("FRAME-RATE", float(v.frame_rate)),
        ]
        if audio:
            attrs.append(("AUDIO", AUDIO_GROUP))
        attrs += subtitles.stream_inf_attrs(p)
        lines.append(f"{tags.STREAM_INF}:" + _attrs(attrs))
        lines.append(v.playlist_uri)
    for v in sorted(p.video, key=lambda r: peak_bitrate(r, seg)):
        lines.append(f"{tags.I_FRAME_STREAM_INF}:" + _attrs([
            ("BANDWIDTH", iframe_peak_bitrate(v)),
            ("AVERAGE-BANDWIDTH", iframe_average_bitrate(v)),
            ("CODECS", v.codecs),
            ("RESOLUTION", _Enum(f"{v.width}x{v.height}")),
            ("URI", v.iframe_playlist_uri),
        ]))
    return "\n".join(lines) + "\n"
