"""The subtitles rendition and chapters in the manifests (issue 14), kept apart from the
audio/video rendering in hls.py and dash.py, which call these functions.

HLS (RFC 8216bis §4.4.6.1, Apple's HLS authoring spec): one `EXT-X-MEDIA:TYPE=SUBTITLES`
in group "subs", `SUBTITLES="subs"` on every variant (EXT-X-STREAM-INF) so every player
on every variant sees the track, a VOD WebVTT media playlist with one segment per media
segment and the same durations, and `EXT-X-SESSION-DATA` pointing at Apple's chapters JSON.

DASH: the whole transcript as one side-loaded WebVTT file (an AdaptationSet of
contentType "text", mimeType "text/vtt", a Representation with a BaseURL). dash.js and
Shaka both play that form; segmented raw WebVTT through a SegmentTemplate is read by
Shaka only (dash.js wants text segments in fMP4), so the single file is the form both take.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from manifests import layout, tags
from manifests.model import Presentation, TextTrack

GROUP = "subs"
CHAPTERS_DATA_ID = "com.apple.hls.chapters"
SESSION_DATA = "#EXT-X-SESSION-DATA"
# WebVTT segments need only fractional EXTINF (version 3); no EXT-X-MAP, no byte ranges.
PLAYLIST_VERSION = 3


def media_playlist(t: TextTrack, target: int) -> str:
    """The subtitles media playlist: one WebVTT segment per media segment, same EXTINF.

    `target` is the presentation's EXT-X-TARGETDURATION: the segments have the media's
    durations, so the media's target holds for them too (subtitle playlists are exempt
    from §6.2.4's shared target, but keeping it costs nothing and surprises no player).
    """
    lines = [tags.EXTM3U, f"{tags.VERSION}:{PLAYLIST_VERSION}",
             f"{tags.TARGETDURATION}:{target}", f"{tags.MEDIA_SEQUENCE}:{t.first_number}",
             f"{tags.PLAYLIST_TYPE}:VOD"]
    for i, seconds in enumerate(t.segment_durations):
        lines.append(f"{tags.EXTINF}:{seconds:.6f},")
        lines.append(layout.subtitle_segment_name(t.first_number + i))
    lines.append(tags.ENDLIST)
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    """A quoted-string attribute value cannot hold '"', CR or LF (§4.2)."""
    return value.replace('"', "'").replace("\r", " ").replace("\n", " ")


def media_tag(t: TextTrack) -> str:
    return (f'{tags.MEDIA}:TYPE=SUBTITLES,GROUP-ID="{GROUP}",NAME="{_quoted(t.name)}",'
            f'LANGUAGE="{_quoted(t.language)}",DEFAULT=NO,AUTOSELECT=YES,'
            f'URI="{t.playlist_uri}"')


def multivariant_tags(p: Presentation) -> list[str]:
    """Lines for the multivariant playlist's head: the subtitles rendition and chapters."""
    lines = []
    if p.text is not None:
        lines.append(media_tag(p.text))
    if p.chapters_uri:
        lines.append(f'{SESSION_DATA}:DATA-ID="{CHAPTERS_DATA_ID}",URI="{p.chapters_uri}"')
    return lines


def stream_inf_attrs(p: Presentation) -> list[tuple[str, object]]:
    """Attributes every EXT-X-STREAM-INF of `p` adds: SUBTITLES when there is a track."""
    return [("SUBTITLES", GROUP)] if p.text is not None else []


def add_adaptation_set(period: ET.Element, p: Presentation, set_id: int) -> None:
    """The text AdaptationSet of the MPD (after audio and video), when `p` has a track."""
    t = p.text
    if t is None:
        return
    aset = ET.SubElement(period, "AdaptationSet", {
        "id": str(set_id), "contentType": "text", "mimeType": "text/vtt", "lang": t.language,
    })
    ET.SubElement(aset, "Label").text = t.name  # what dash.js and Shaka show as its name
    ET.SubElement(aset, "Role", {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "subtitle"})
    rep = ET.SubElement(aset, "Representation", {"id": GROUP, "bandwidth": str(t.bandwidth)})
    ET.SubElement(rep, "BaseURL").text = t.whole_uri
