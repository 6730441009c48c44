"""manifests/subtitles.py through hls.py and dash.py: the subtitles rendition and chapters
in the multivariant playlist, the WebVTT media playlist, the MPD's text AdaptationSet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import m3u8
import pytest
from lxml import etree
from test_manifests import AUDIO, VIDEO

from manifests import dash, hls, subtitles
from manifests.model import Presentation, TextTrack

XSD = Path(__file__).resolve().parent.parent / "schemas" / "dash" / "DASH-MPD.xsd"
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def with_text(p: Presentation, chapters: bool = True) -> Presentation:
    ref = p.audio[0]
    track = TextTrack(dir="v/abc123/subs", segment_durations=tuple(hls.segment_seconds(ref)),
                      whole_uri="v/abc123/transcript.vtt", bandwidth=320, language="en",
                      name='Say "hi"')
    return dataclasses.replace(p, text=track,
                               chapters_uri="v/abc123/chapters.json" if chapters else "")


@pytest.mark.parametrize("p", [AUDIO, VIDEO], ids=["audio", "video"])
def test_multivariant_has_the_subtitles_group_on_every_variant(p: Presentation) -> None:
    text = hls.multivariant_playlist(with_text(p))
    pl = m3u8.loads(text)
    subs = [m for m in pl.media if m.type == "SUBTITLES"]
    assert len(subs) == 1
    assert (subs[0].group_id, subs[0].language, subs[0].default, subs[0].autoselect,
            subs[0].uri) == ("subs", "en", "NO", "YES", "v/abc123/subs/index.m3u8")
    assert subs[0].name == "Say 'hi'"  # a quoted-string cannot hold '"'
    assert pl.playlists and all(v.stream_info.subtitles == "subs" for v in pl.playlists)
    assert all("SUBTITLES" not in ln for ln in text.splitlines()
               if ln.startswith("#EXT-X-I-FRAME-STREAM-INF"))
    assert '#EXT-X-SESSION-DATA:DATA-ID="com.apple.hls.chapters",URI="v/abc123/chapters.json"' \
        in text.splitlines()
    # without a transcript nothing changes
    plain = hls.multivariant_playlist(p)
    assert "SUBTITLES" not in plain and "SESSION-DATA" not in plain
    no_chapters = hls.multivariant_playlist(with_text(p, chapters=False))
    assert "SESSION-DATA" not in no_chapters and "SUBTITLES" in no_chapters


def test_subtitles_media_playlist() -> None:
    p = with_text(AUDIO)
    assert p.text is not None
    target = hls.presentation_target(p)
    text = subtitles.media_playlist(p.text, target)
    pl = m3u8.loads(text)
    assert pl.is_endlist and pl.playlist_type == "vod" and pl.target_duration == target
    assert [s.uri for s in pl.segments] == ["seg_00001.vtt", "seg_00002.vtt", "seg_00003.vtt"]
    assert [s.duration for s in pl.segments] == [
        round(d, 6) for d in hls.segment_seconds(AUDIO.audio[0])]
    assert "#EXT-X-MAP" not in text and pl.media_sequence == 1


@pytest.mark.parametrize("p", [AUDIO, VIDEO], ids=["audio", "video"])
def test_mpd_text_adaptation_set_is_schema_valid(p: Presentation) -> None:
    doc = etree.fromstring(dash.mpd(with_text(p)).encode())
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log
    sets = doc.findall(".//d:AdaptationSet", NS)
    ids = [s.get("id") for s in sets]
    assert len(set(ids)) == len(ids)
    text = [s for s in sets if s.get("contentType") == "text"]
    assert len(text) == 1
    t = text[0]
    assert (t.get("mimeType"), t.get("lang")) == ("text/vtt", "en")
    assert t.find("d:Role", NS).get("value") == "subtitle"
    rep = t.find("d:Representation", NS)
    assert rep.get("bandwidth") == "320"
    assert rep.find("d:BaseURL", NS).text == "v/abc123/transcript.vtt"
    assert t.find("d:Label", NS).text == 'Say "hi"'
    assert 'contentType="text"' not in dash.mpd(p)  # no transcript, no text set
