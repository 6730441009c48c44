"""packager.transcript: WebVTT segments aligned to media segments, whole files, chapters."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from packager.transcript import chapters, segment
from packager.transcript.cues import Chapter, Cue, Transcript, format_timestamp

_BLOCK = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+?)\n\n", re.S)


def _parse_ts(ts: str) -> int:
    h, m, rest = ts.split(":")
    s, ms = rest.split(".")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _cues_of(vtt: str) -> list[tuple[int, int, int, str]]:
    return [(int(i), _parse_ts(a), _parse_ts(b), t) for i, a, b, t in _BLOCK.findall(vtt)]


@st.composite
def cue_lists(draw: st.DrawFn) -> list[Cue]:
    """Non-overlapping cues in time order (gaps allowed), with plain words."""
    t = draw(st.integers(0, 2000))
    out = []
    for _ in range(draw(st.integers(1, 30))):
        t += draw(st.integers(0, 3000))
        length = draw(st.integers(1, 9000))
        words = draw(st.text("abc xyz&<>", min_size=1, max_size=20).filter(lambda s: s.strip()))
        out.append(Cue(t, t + length, " ".join(words.split())))
        t += length
    return out


@st.composite
def media_windows(draw: st.DrawFn, end_ms: int) -> list[segment.Window]:
    """Contiguous windows from 0 past `end_ms`, in a 48 kHz timescale like AAC segments."""
    rate = 48_000
    target = draw(st.sampled_from([2, 4, 6]))
    ticks, n, out = 0, 1, []
    while ticks * 1000 < end_ms * rate or not out:
        dur = target * rate + draw(st.integers(-1024, 1024))
        out.append((n, ticks, dur))
        ticks += dur
        n += 1
    return segment.windows(out, rate)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_segments_reassemble_the_transcript(data: st.DataObject) -> None:
    cues = data.draw(cue_lists())
    wins = data.draw(media_windows(cues[-1].end))
    t = Transcript(tuple(cues))
    out = segment.segments(t, wins, 0)
    assert [n for n, _ in out] == [w.number for w in wins]
    seen: dict[int, tuple[int, int, str]] = {}
    for (number, text), w in zip(out, wins, strict=True):
        assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n")
        for cid, start, end, body in _cues_of(text):
            # each cue shown in a segment overlaps that segment's window
            assert start / 1000 < w.end and end / 1000 > w.start, (number, cid)
            assert seen.setdefault(cid, (start, end, body)) == (start, end, body)
    # every cue is somewhere, with its own times and (escaped) text, and ids follow time
    expected = {i: (c.start, c.end, segment.escape(c.text)) for i, c in enumerate(cues, 1)}
    assert seen == expected
    # and a cue is in exactly the windows it overlaps
    for i, c in enumerate(cues, 1):
        holders = [n for n, text in out if any(x[0] == i for x in _cues_of(text))]
        assert holders == [w.number for w in wins if c.start / 1000 < w.end
                           and c.end / 1000 > w.start]


def test_boundary_cue_repeats_and_mpegts() -> None:
    t = Transcript((Cue(1000, 5000, "across"), Cue(5000, 7000, "after")))
    wins = segment.windows([(1, 0, 4 * 44100), (2, 4 * 44100, 4 * 44100)], 44100)
    (n1, s1), (n2, s2) = segment.segments(t, wins, segment.mpegts(44100 * 10, 44100))
    assert "MPEGTS:900000," in s1 and [c[0] for c in _cues_of(s1)] == [1]
    assert [c[0] for c in _cues_of(s2)] == [1, 2]
    assert segment.mpegts(0, 48000) == 0
    assert segment.mpegts((1 << 33) + 90000, 90000) == 90000  # 33-bit wrap


def test_empty_window_is_a_valid_segment() -> None:
    t = Transcript((Cue(0, 500, "a"),))
    wins = segment.windows([(1, 0, 48000), (2, 48000, 48000)], 48000)
    assert segment.segments(t, wins)[1][1] == "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n"


def test_whole_vtt_and_text() -> None:
    t = Transcript((Cue(0, 1000, "One <&>", "Intro"), Cue(1000, 2000, "two\nlines"),
                    Cue(3_600_000, 3_600_500, "later")), (Chapter(1000, "Two"),))
    vtt = segment.whole_vtt(t)
    assert vtt.startswith("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nOne &lt;&amp;&gt;\n\n")
    assert "3\n01:00:00.000 --> 01:00:00.500\nlater\n" in vtt
    assert segment.plain_text(t) == "One <&>\n\ntwo lines\nlater\n"
    assert format_timestamp(3_723_004) == "01:02:03.004"


def test_apple_chapters_json_and_vtt() -> None:
    t = Transcript((Cue(0, 1000, "a", "Opening"), Cue(1000, 4000, "b"),
                    Cue(4000, 6000, "c", "Close")), (Chapter(2500, "Middle"),), "en")
    found = chapters.collect(t)
    assert [(c.start, c.title) for c in found] == [(0, "Opening"), (2500, "Middle"),
                                                   (4000, "Close")]
    doc = json.loads(chapters.apple_json(found, 7000, t.language))
    assert doc == [
        {"chapter": 1, "start-time": 0.0, "duration": 2.5,
         "titles": [{"language": "en", "title": "Opening"}]},
        {"chapter": 2, "start-time": 2.5, "duration": 1.5,
         "titles": [{"language": "en", "title": "Middle"}]},
        {"chapter": 3, "start-time": 4.0, "duration": 3.0,
         "titles": [{"language": "en", "title": "Close"}]},
    ]
    assert [(s, e, x) for _i, s, e, x in _cues_of(chapters.chapters_vtt(found, 7000))] == [
        (0, 2500, "Opening"), (2500, 4000, "Middle"), (4000, 7000, "Close")]
