"""packager.live.captions: cues on the producer's audio, mapped to media time across the
silence the origin inserts; the wire forms; WebVTT segments of media windows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packager.live.captions import LiveCaptions, header_text, timed_cues
from packager.transcript.cues import TranscriptError

RATE = 1000  # frames per second: one frame is one millisecond


def _stream(*writes: tuple[str, int]) -> LiveCaptions:
    c = LiveCaptions()
    c.rate = RATE
    for kind, frames in writes:
        c.fed(frames, speech=kind == "speech")
    return c


def test_a_chunk_cue_spans_its_audio_after_a_fill_before_it() -> None:
    c = _stream(("speech", 1000))
    c.chunk_span("first", 0, 1000)
    c.fed(500, speech=False)  # the producer lagged: half a second of silence
    before = c.speech_frames
    c.fed(2000, speech=True)
    c.chunk_span("second", before, c.speech_frames)
    assert [(q.start, q.end, q.text) for q in c.cues()] == [(0, 1000, "first"),
                                                             (1500, 3500, "second")]


def test_a_cue_with_a_fill_in_the_middle_spans_the_fill() -> None:
    c = _stream()
    c.timed(timed_cues('{"text": "a long sentence", "start": 0.5, "end": 2.5}'))
    c.fed(1200, speech=True)
    c.fed(300, speech=False)  # inside the cue's audio
    c.fed(1800, speech=True)
    [cue] = c.cues(final=True)
    assert (cue.start, cue.end) == (500, 2800)


def test_a_cue_ending_where_a_fill_starts_does_not_take_the_fill() -> None:
    c = _stream(("speech", 1000), ("silence", 700), ("speech", 1000))
    c.timed(timed_cues('[{"text": "one", "start": 0, "end": 1}, {"text": "two", "start": 1, "end": 2}]'))
    assert [(q.start, q.end) for q in c.cues()] == [(0, 1000), (1700, 2700)]


def test_an_end_beyond_the_audio_is_provisional_then_clipped() -> None:
    c = _stream(("speech", 1000), ("silence", 200))
    c.timed(timed_cues('{"text": "still speaking", "start": 0.2, "end": 1.6}'))
    # its rest comes after everything written so far
    assert [(q.start, q.end) for q in c.cues()] == [(200, 1800)]
    assert [(q.start, q.end) for q in c.cues(final=True)] == [(200, 1000)]


def test_a_window_waits_while_a_cue_in_it_has_audio_to_come() -> None:
    c = _stream(("speech", 1000))
    c.timed(timed_cues('{"text": "long", "start": 0.5, "end": 2.0}'))
    assert c.unresolved(0.0, 1.0) and c.unresolved(1.0, 2.0)
    assert not c.unresolved(2.5, 3.0)  # the cue is not shown there (as far as known)
    c.fed(1000, speech=True)
    assert not c.unresolved(0.0, 1.0)


def test_a_cue_whose_audio_has_not_come_is_not_shown_yet() -> None:
    c = _stream(("speech", 1000))
    c.timed(timed_cues('{"text": "later", "start": 3, "end": 4}'))
    assert c.cues() == []
    c.fed(2500, speech=True)
    assert [(q.start, q.end) for q in c.cues()] == [(3000, 4000)]
    assert [(q.start, q.end) for q in c.cues(final=True)] == [(3000, 3500)]


def test_compressed_chunks_are_timed_by_the_decoder_output_between_them() -> None:
    c = _stream()
    c.pending_chunk("hello")
    c.fed(800, speech=True)
    c.pending_chunk(None)  # the next chunk, without text, closes it
    c.fed(400, speech=True)
    c.pending_chunk("world")
    c.fed(600, speech=True)
    c.close_pending()
    assert [(q.start, q.end, q.text) for q in c.cues()] == [(0, 800, "hello"), (1200, 1800, "world")]


def test_overlapping_and_out_of_order_cues_are_refused() -> None:
    c = _stream(("speech", 5000))
    c.timed(timed_cues('{"text": "a", "start": 1, "end": 2}'))
    with pytest.raises(TranscriptError, match="overlaps"):
        c.timed(timed_cues('{"text": "b", "start": 1.5, "end": 3}'))
    with pytest.raises(TranscriptError, match="before the previous"):
        c.timed(timed_cues('{"text": "c", "start": 0.5, "end": 0.8}'))


def test_markup_is_stripped_and_the_wire_forms_checked() -> None:
    c = _stream(("speech", 1000))
    c.chunk_span("<b>bold</b> <script>x()</script>&amp; fine", 0, 1000)
    assert c.cues()[0].text == "bold & fine"
    assert header_text("caf%C3%A9%20%E2%80%99", "X") == "café ’"
    with pytest.raises(TranscriptError, match="UTF-8"):
        header_text("%FF%FE", "X-Sori-Text")
    with pytest.raises(TranscriptError):
        timed_cues("not json")
    with pytest.raises(TranscriptError):
        timed_cues('{"text": "no times"}')
    with pytest.raises(TranscriptError):
        timed_cues('{"text": "backwards", "start": 2, "end": 1}')


def test_timed_cues_need_the_rate() -> None:
    c = LiveCaptions()
    with pytest.raises(TranscriptError, match="format"):
        c.timed(timed_cues('{"text": "x", "start": 0, "end": 1}'))


def test_segments_show_the_cues_of_their_window_with_stable_ids() -> None:
    c = _stream(("speech", 5000))
    c.timed(timed_cues('[{"text": "a", "start": 0.5, "end": 2.5}, {"text": "b", "start": 3, "end": 4}]'))
    one = c.segment_text(1, 0.0, 2.0)
    two = c.segment_text(2, 2.0, 4.0)
    assert one.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n")
    assert "1\n00:00:00.500 --> 00:00:02.500\na\n" in one and "\nb\n" not in one
    assert "1\n00:00:00.500 --> 00:00:02.500\na\n" in two  # repeated, same id and times
    assert "2\n00:00:03.000 --> 00:00:04.000\nb\n" in two


@given(st.lists(st.tuples(st.sampled_from(["speech", "silence"]), st.integers(1, 400)),
                min_size=1, max_size=40))
def test_every_producer_frame_maps_to_where_it_was_written(writes: list[tuple[str, int]]) -> None:
    c = _stream(*writes)
    media = 0
    speech = 0
    for kind, n in writes:
        if kind == "speech":
            for k in (0, n - 1):
                assert c._media_start(speech + k) == media + k
            assert c._media_end(speech + n) == media + n
            speech += n
        media += n
    assert c.speech_frames == speech and c.media_frames == media


# --- the live manifests' text (manifests.llhls, manifests.dash_live) -------------------------


def test_live_multivariant_declares_the_subtitles_on_every_variant() -> None:
    from manifests.llhls import live_multivariant

    text = live_multivariant([("v/x/low/index.m3u8", 90000, "mp4a.40.2"),
                              ("v/x/high/index.m3u8", 200000, "mp4a.40.2")],
                             subtitles="v/x/subs/index.m3u8")
    media = [line for line in text.splitlines() if line.startswith("#EXT-X-MEDIA:")]
    assert media == ['#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Transcript",'
                     'LANGUAGE="und",DEFAULT=NO,AUTOSELECT=YES,URI="v/x/subs/index.m3u8"']
    variants = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(variants) == 2 and all(v.endswith(',SUBTITLES="subs"') for v in variants)
    plain = live_multivariant([("v/x/low/index.m3u8", 90000, "mp4a.40.2")])
    assert "SUBTITLES" not in plain


def test_live_subtitles_playlist() -> None:
    from manifests.llhls import LiveTiming, live_subtitles_playlist

    timing = LiveTiming(2, 0.25, 1_700_000_000.0)
    empty = live_subtitles_playlist([], timing)
    assert "#EXT-X-PROGRAM-DATE-TIME" not in empty and "seg_" not in empty
    text = live_subtitles_playlist([0.232, 1.857], timing)
    lines = text.splitlines()
    assert lines[:5] == ["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-TARGETDURATION:2",
                         "#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:EVENT"]
    assert "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z" in lines
    assert lines[-4:] == ["#EXTINF:0.232000,", "seg_00001.vtt", "#EXTINF:1.857000,", "seg_00002.vtt"]
    assert "#EXT-X-ENDLIST" not in text and "SERVER-CONTROL" not in text


@pytest.mark.parametrize("spans", [(), ((0, 5120), (5120, 40960))])
def test_the_live_mpd_text_set_is_schema_valid(spans: tuple[tuple[int, int], ...]) -> None:
    import os

    from lxml import etree

    from manifests.dash_live import LiveRepresentation, LiveText, live_mpd

    text = LiveText("v/x/subs", 22050, spans, nominal=44100)
    mpd = live_mpd([LiveRepresentation("low", 90000, "mp4a.40.2", 22050, 1, "v/x/low")],
                   start=1_700_000_000.0, published=1_700_000_010.0, segment=2.0, part=0.25,
                   latency_target=1.0, utc_url="http://o/v1/time",
                   timelines={"low": [(0, 5120), (5120, 40960)]}, text=text)
    root = etree.fromstring(mpd.encode())
    schema = etree.XMLSchema(etree.parse(os.environ["SORI_TEST_DASH_SCHEMA"]))
    assert schema.validate(root), schema.error_log
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    [aset] = root.findall("d:Period/d:AdaptationSet[@contentType='text']", ns)
    assert aset.get("mimeType") == "text/vtt"
    tpl = aset.find("d:Representation/d:SegmentTemplate", ns)
    assert tpl is not None and tpl.get("media") == "v/x/subs/seg_$Number%05d$.vtt"
    if spans:
        assert [s.get("d") for s in tpl.findall("d:SegmentTimeline/d:S", ns)] == ["5120", "40960"]
    else:
        assert tpl.get("duration") == "44100" and tpl.find("d:SegmentTimeline", ns) is None


def test_repeated_cue_headers_make_one_message() -> None:
    from urllib.parse import quote

    from packager.live.captions import header_cues

    one = header_cues(['{"text": "caf\\u00e9", "start": 0, "end": 1}'], "X-Sori-Cues")
    assert [q.text for q in one.cues] == ["café"]
    two = header_cues(['{"text": "a", "start": 0, "end": 1}',
                       quote('[{"text": "b\u2019", "start": 1, "end": 2, "chapter": "B"}]')],
                      "X-Sori-Cues")
    assert [(q.start, q.text, q.chapter) for q in two.cues] == [(0, "a", None), (1000, "b\u2019", "B")]
    with pytest.raises(TranscriptError, match="overlap"):
        header_cues(['{"text": "a", "start": 0, "end": 1.5}', '{"text": "b", "start": 1, "end": 2}'],
                    "X-Sori-Cues")
    with pytest.raises(TranscriptError, match="JSON"):
        header_cues(["{nope", '{"text": "b", "start": 1, "end": 2}'], "X-Sori-Cues")
