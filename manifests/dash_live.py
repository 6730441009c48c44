"""The dynamic MPD of a live asset: low-latency DASH over the same CMAF parts and segments.

Segments are listed in a SegmentTimeline (addressed by $Number$): every completed one with
its measured duration, then the one being produced and the next at the nominal duration.
A client asks for the one in progress `availabilityTimeOffset` early, when its first part
exists, and the origin sends it with chunked transfer as its parts land
(availabilityTimeComplete=false); an update every half segment tells it of the next.
This is the kind of index the sealed (static) MPD has, so players that keep their index
across MPD updates (Shaka) take the end of the stream. UTCTiming points at the origin's
clock; ServiceDescription states the latency the stream is built for. When the stream
ends the MPD becomes the static one of manifests.dash, as for any packaged asset.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

from manifests import layout
from manifests.dash import CHANNEL_SCHEME, NS, iso_duration

LL_PROFILE = "urn:mpeg:dash:profile:isoff-live:2011,http://www.dashif.org/guidelines/low-latency-live-v5"
UTC_SCHEME = "urn:mpeg:dash:utc:http-iso:2014"


@dataclass(frozen=True)
class LiveText:
    """A live stream's WebVTT segments (issue 14): `dir` relative to the asset root,
    `spans` (start, duration) in `timescale` ticks of each one written so far."""

    dir: str
    timescale: int
    spans: tuple[tuple[int, int], ...]
    nominal: int  # ticks of a segment, for @duration while none is written (no empty timeline)
    language: str = "und"


@dataclass(frozen=True)
class LiveRepresentation:
    id: str
    bandwidth: int  # upper bound while live
    codecs: str
    sample_rate: int  # also the timescale
    channels: int
    dir: str  # rendition directory relative to the asset root


def _timeline(parent: ET.Element, spans: list[tuple[int, int]]) -> None:
    """S elements, runs of equal durations folded into @r (ISO/IEC 23009-1 §5.3.9.6)."""
    tl = ET.SubElement(parent, "SegmentTimeline")
    run: ET.Element | None = None
    expected: int | None = None
    last = -1
    for t, d in spans:
        if run is not None and t == expected and d == last:
            run.set("r", str(int(run.get("r", "0")) + 1))
        else:
            run = ET.SubElement(tl, "S")
            if t != expected:
                run.set("t", str(t))
            run.set("d", str(d))
            last = d
        expected = t + d


def _text_set(period: ET.Element, text: LiveText) -> None:
    """The subtitles AdaptationSet of a live stream: its WebVTT segments, numbered and
    timed as the media segments, listed once written (no early availability: a text
    segment exists only once its media segment is complete; before the first one, @duration,
    and the origin holds a request for a segment not yet written). dash.js 5 plays
    segmented WebVTT live; the sealed MPD switches to the one side-loaded file of
    manifests.subtitles."""
    aset = ET.SubElement(period, "AdaptationSet", {
        "id": "1", "contentType": "text", "mimeType": "text/vtt", "lang": text.language,
    })
    ET.SubElement(aset, "Role", {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "subtitle"})
    rep = ET.SubElement(aset, "Representation", {"id": "subs", "bandwidth": "256"})
    tpl = ET.SubElement(rep, "SegmentTemplate", {
        "timescale": str(text.timescale),
        "media": f"{text.dir}/{layout.SUBTITLE_SEGMENT_TEMPLATE}",
        "startNumber": "1",
    })
    if text.spans:
        _timeline(tpl, list(text.spans))
    else:
        tpl.set("duration", str(text.nominal))


def _xs_datetime(epoch: float) -> str:
    t = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def live_mpd(reps: Iterable[LiveRepresentation], *, start: float, published: float,
             segment: float, part: float, latency_target: float, utc_url: str,
             title: str = "",
             timelines: dict[str, list[tuple[int, int]]] | None = None,
             text: LiveText | None = None) -> str:
    """A dynamic MPD; `start` is the wall clock of media time 0 (availabilityStartTime),
    `segment` and `part` the nominal durations in seconds. With `timelines` (representation
    id -> (start, duration) ticks of every segment so far, the one in progress and the next
    one nominally), segments are listed in a SegmentTimeline, as the MPD the stream is sealed
    into lists them, so a player that keeps its segment index across the update from
    dynamic to static (Shaka) finds the same kind of index; otherwise $Number$ with
    @duration."""
    root = ET.Element("MPD", {
        "xmlns": NS,
        "profiles": LL_PROFILE,
        "type": "dynamic",
        "availabilityStartTime": _xs_datetime(start),
        "publishTime": _xs_datetime(published),
        # with a timeline the client learns of each next segment from an update: twice a
        # segment; with @duration it computes them and updates only to see the end
        "minimumUpdatePeriod": iso_duration(segment / 2 if timelines is not None else segment),
        "timeShiftBufferDepth": "PT4H",
        "maxSegmentDuration": iso_duration(segment + part),
        "minBufferTime": iso_duration(part * 2),
    })
    if title:
        info = ET.SubElement(root, "ProgramInformation")
        ET.SubElement(info, "Title").text = title
    service = ET.SubElement(root, "ServiceDescription", {"id": "0"})
    ET.SubElement(service, "Latency", {
        "referenceId": "0", "target": str(round(latency_target * 1000)),
        "min": str(round(part * 2 * 1000)), "max": str(round(latency_target * 3000))})
    ET.SubElement(service, "PlaybackRate", {"min": "0.96", "max": "1.04"})
    period = ET.SubElement(root, "Period", {"id": "0", "start": "PT0S"})
    aset = ET.SubElement(period, "AdaptationSet", {
        "id": "0", "contentType": "audio", "mimeType": "audio/mp4", "lang": "und",
        "segmentAlignment": "true", "startWithSAP": "1",
    })
    ET.SubElement(aset, "Role", {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "main"})
    for r in sorted(reps, key=lambda r: r.bandwidth):
        rep = ET.SubElement(aset, "Representation", {
            "id": r.id, "bandwidth": str(r.bandwidth), "codecs": r.codecs,
            "audioSamplingRate": str(r.sample_rate),
        })
        ET.SubElement(rep, "AudioChannelConfiguration", {
            "schemeIdUri": CHANNEL_SCHEME, "value": str(r.channels)})
        tpl = ET.SubElement(rep, "SegmentTemplate", {
            "timescale": str(r.sample_rate),
            "initialization": f"{r.dir}/{layout.INIT}",
            "media": f"{r.dir}/{layout.SEGMENT_TEMPLATE}",
            "startNumber": "1",
            "availabilityTimeOffset": f"{segment - part:.3f}",
            "availabilityTimeComplete": "false",
        })
        if timelines is None:
            tpl.set("duration", str(round(segment * r.sample_rate)))
        else:
            _timeline(tpl, timelines.get(r.id, []))
    if text is not None:
        _text_set(period, text)
    ET.SubElement(root, "UTCTiming", {"schemeIdUri": UTC_SCHEME, "value": utc_url})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
