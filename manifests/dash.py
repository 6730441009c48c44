"""Rendering a static DASH MPD (ISO/IEC 23009-1) over the same CMAF segments as HLS.

SegmentTemplate with SegmentTimeline per Representation (each rendition has its own
timescale and measured durations); audio and video in separate AdaptationSets.
Element order follows the DASH-MPD.xsd sequences.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from fractions import Fraction

from manifests import layout, subtitles
from manifests.bandwidth import peak_bitrate
from manifests.model import Presentation, Rendition

NS = "urn:mpeg:dash:schema:mpd:2011"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNEL_SCHEME = "urn:mpeg:mpegB:cicp:ChannelConfiguration"


def iso_duration(seconds: float) -> str:
    """xs:duration with millisecond precision, e.g. PT1H2M3.456S."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s = rest / 1000
    out = "PT"
    if h:
        out += f"{h}H"
    if m:
        out += f"{m}M"
    return out + f"{s:.3f}S"


def _frame_rate(fps: float) -> str:
    f = Fraction(fps).limit_denominator(1001)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _timeline(parent: ET.Element, r: Rendition) -> None:
    """S elements, with runs of equal durations folded into @r (§5.3.9.6)."""
    tl = ET.SubElement(parent, "SegmentTimeline")
    expected: int | None = None
    run: ET.Element | None = None
    last_d = -1
    for seg in r.segments:
        if run is not None and seg.start == expected and seg.duration == last_d:
            run.set("r", str(int(run.get("r", "0")) + 1))
        else:
            run = ET.SubElement(tl, "S")
            if seg.start != expected:
                run.set("t", str(seg.start))
            run.set("d", str(seg.duration))
            last_d = seg.duration
        expected = seg.start + seg.duration


def _template(parent: ET.Element, r: Rendition) -> None:
    first = r.segments[0].number if r.segments else 1
    tpl = ET.SubElement(parent, "SegmentTemplate", {
        "timescale": str(r.timescale),
        "initialization": r.init_uri,
        "media": f"{r.dir}/{layout.SEGMENT_TEMPLATE}",
        "startNumber": str(first),
    })
    if r.segments and r.segments[0].start:
        tpl.set("presentationTimeOffset", str(r.segments[0].start))
    _timeline(tpl, r)


def mpd(p: Presentation) -> str:
    seg = p.segment_duration
    root = ET.Element("MPD", {
        "xmlns": NS,
        "profiles": PROFILE,
        "type": "static",
        "mediaPresentationDuration": iso_duration(p.duration),
        "minBufferTime": iso_duration(min(2 * seg, 10.0)),
    })
    if p.title:
        info = ET.SubElement(root, "ProgramInformation")
        ET.SubElement(info, "Title").text = p.title
    period = ET.SubElement(root, "Period", {"id": "0", "start": "PT0S"})
    set_id = 0
    if p.video:
        vids = sorted(p.video, key=lambda r: peak_bitrate(r, seg))
        aset = ET.SubElement(period, "AdaptationSet", {
            "id": str(set_id), "contentType": "video", "mimeType": "video/mp4",
            "segmentAlignment": "true", "startWithSAP": "1",
            "maxWidth": str(max(v.width for v in vids)),
            "maxHeight": str(max(v.height for v in vids)),
            "maxFrameRate": _frame_rate(max(v.frame_rate for v in vids)),
            "par": _par(vids[-1]),
        })
        ET.SubElement(aset, "Role", {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "main"})
        for v in vids:
            rep = ET.SubElement(aset, "Representation", {
                "id": v.id, "bandwidth": str(peak_bitrate(v, seg)), "codecs": v.codecs,
                "width": str(v.width), "height": str(v.height),
                "frameRate": _frame_rate(v.frame_rate), "sar": "1:1",
            })
            _template(rep, v)
        set_id += 1
    for i, family in enumerate(p.audio_sets):  # AAC, then the Opus data-saver rung
        _audio_adaptation_set(period, family, set_id, seg, main=i == 0)
        set_id += 1
    subtitles.add_adaptation_set(period, p, set_id)  # the transcript (issue 14)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _audio_adaptation_set(period: ET.Element, family: tuple[Rendition, ...], set_id: int,
                          seg: float, *, main: bool) -> None:
    """One audio AdaptationSet per codec family: a player switches Representations only
    within one, and codecs may not change inside one (ISO/IEC 23009-1 §5.3.3.1).

    The AAC set has Role "main"; any other (the Opus data-saver rung, issue 14) has Role
    "alternate" and selectionPriority 0 (the default is 1, higher is preferred, §5.3.7.2),
    so a player picking its initial audio set by priority or by Role main (dash.js does
    both before anything else) starts on AAC-LC, and one that cannot decode Opus skips it.
    """
    auds = sorted(family, key=lambda r: peak_bitrate(r, seg))
    attrs = {"id": str(set_id), "contentType": "audio", "mimeType": "audio/mp4",
             "lang": auds[0].language, "segmentAlignment": "true", "startWithSAP": "1"}
    if not main:
        attrs["selectionPriority"] = "0"
    aset = ET.SubElement(period, "AdaptationSet", attrs)
    ET.SubElement(aset, "Role", {"schemeIdUri": "urn:mpeg:dash:role:2011",
                                 "value": "main" if main else "alternate"})
    for a in auds:
        rep = ET.SubElement(aset, "Representation", {
            "id": a.id, "bandwidth": str(peak_bitrate(a, seg)), "codecs": a.codecs,
            "audioSamplingRate": str(a.sample_rate),
        })
        ET.SubElement(rep, "AudioChannelConfiguration", {
            "schemeIdUri": CHANNEL_SCHEME, "value": str(a.channels or 2)})
        _template(rep, a)


def _par(v: Rendition) -> str:
    g = math.gcd(v.width, v.height) or 1
    return f"{v.width // g}:{v.height // g}"
