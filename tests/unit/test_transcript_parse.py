"""packager.transcript: parsing WebVTT, SRT and JSON, sanitising text, the checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packager.errors import InvalidInput
from packager.transcript import parse, sanitize
from packager.transcript.cues import MAX_BYTES, MAX_CUE_CHARS, Chapter, Cue, TranscriptError

VTT = """WEBVTT
Kind: captions

NOTE a comment
that spans lines

STYLE
::cue { color: red }

intro
00:00.000 --> 00:02.500 align:start
<v Ann>Hello <b>there</b></v>

00:00:02.500 --> 00:00:04.000
Second &amp; <i>last</i>
line two
"""

SRT = """1
00:00:00,000 --> 00:00:02,500
Hello <font color="red">there</font>

2
00:00:02,500 --> 00:00:04,000
Second line
"""


def test_webvtt_cues_in_plain_text() -> None:
    t = parse.parse(VTT.encode())
    assert t.cues == (Cue(0, 2500, "Hello there"), Cue(2500, 4000, "Second & last\nline two"))


def test_srt_and_crlf_and_bom() -> None:
    t = parse.parse(b"\xef\xbb\xbf" + SRT.replace("\n", "\r\n").encode())
    assert [(c.start, c.end, c.text) for c in t.cues] == [(0, 2500, "Hello there"),
                                                          (2500, 4000, "Second line")]


def test_json_list_with_chapters() -> None:
    doc = [{"start": 0, "end": 1.25, "text": "Intro words", "chapter": True},
           {"start": 1.25, "end": 3, "text": "More"},
           {"start": 3, "end": 4.5, "text": "Next part", "chapter": "Part two"}]
    t = parse.parse(json.dumps(doc).encode())
    assert [(c.start, c.end, c.chapter) for c in t.cues] == [
        (0, 1250, "Intro words"), (1250, 3000, None), (3000, 4500, "Part two")]


def test_json_object_form() -> None:
    doc = {"language": "en-GB", "cues": [{"start": 0.5, "end": 1, "text": "a"}],
           "chapters": [{"start": 0, "title": "<b>Start</b>"}]}
    t = parse.parse(json.dumps(doc).encode())
    assert t.language == "en-GB"
    assert t.chapters == (Chapter(0, "Start"),)
    assert t.cues == (Cue(500, 1000, "a"),)


def test_unsorted_cues_are_sorted() -> None:
    doc = [{"start": 2, "end": 3, "text": "b"}, {"start": 0, "end": 1, "text": "a"}]
    assert [c.text for c in parse.parse(json.dumps(doc).encode()).cues] == ["a", "b"]


@pytest.mark.parametrize("raw, expected", [
    ("<script>alert(1)</script>Hi", "Hi"),
    ("<img src=x onerror=alert(1)>Hi", "Hi"),
    ("a &lt;b&gt; c", "a <b> c"),  # an escaped literal stays text (escaped again on output)
    ("<00:00:01.000>timed <c.loud>word</c>", "timed word"),
    ("one\n\n\ntwo", "one\ntwo"),  # a blank line would end the cue
    ("tab\there\u0007 bell", "tab here bell"),
    ("   ", ""),
])
def test_clean_text(raw: str, expected: str) -> None:
    assert sanitize.clean_text(raw) == expected


@given(st.text(max_size=200))
def test_clean_text_never_leaves_markup_or_a_blank_line(raw: str) -> None:
    out = sanitize.escape(sanitize.clean_text(raw))
    assert "<" not in out and ">" not in out and "-->" not in out
    assert "\n\n" not in out and not out.startswith("\n") and not out.endswith("\n")
    assert "\r" not in out


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"  \n ", "empty"),
    (b"WEBVTT\n\n00:00.000 --> 00:01.000\n\xff\xfehello\n", "not UTF-8"),
    (b"WEBVTT\n", "no cues"),
    (b"WEBVTT\n\n00:00.000 --> 00:01.000\n<b></b>\n", "no cue has any text"),
    (b"WEBVTT\n\n00:00.000 -> 00:01.000\nx\n", "expected a cue timing"),
    (b"WEBVTT\n00:00.000 --> 00:01.000\nx\n", "line 2: a blank line must separate"),
    (b"WEBVTT\n\n00:00.000 --> 00:61.000\nx\n", "bad cue timing"),
    (b"WEBVTT\n\n00:02.000 --> 00:01.000\nx\n", "ends at or before its start"),
    (b"WEBVTT\n\n00:00.000 --> 00:02.000\na\n\n00:01.500 --> 00:03.000\nb\n", "overlap"),
    (b"1\n00:00:00,000 --> 00:00:01,000\nx\n\nnonsense\n", "SRT line 5"),
    (b"[{\"start\": 0, \"end\": 1}]", "cue 1 has no text"),
    (b"[{\"start\": \"0\", \"end\": 1, \"text\": \"x\"}]", "cue 1: start must be a number"),
    (b"[{\"start\": 0, \"end\": 1, \"text\": 5}]", "cue 1: text must be a string"),
    (b"[{\"start\": 0, \"end\": 1, \"text\": \"x\", \"chapter\": 3}]", "chapter must be"),
    (b"{\"cues\": [], \"speakers\": 1}", "unknown JSON keys"),
    (b"{\"cues\": [{\"start\": 0, \"end\": 1, \"text\": \"x\"}], \"language\": \"e n\"}", "BCP 47"),
    (b"[1, 2", "invalid JSON"),
    (b"{\"chapters\": [{\"start\": 0, \"title\": \"a\"}, {\"start\": 0, \"title\": \"b\"}], "
     b"\"cues\": [{\"start\": 0, \"end\": 1, \"text\": \"x\"}]}", "both start at"),
    (b"[{\"start\": 0, \"end\": 1, \"text\": \"" + b"w" * (MAX_CUE_CHARS + 1) + b"\"}]",
     "more than 1000"),
    (b"x" * (MAX_BYTES + 1), "more than the limit"),
])
def test_bad_transcripts_name_the_problem(data: bytes, words: str) -> None:
    with pytest.raises(TranscriptError) as e:
        parse.parse(data)
    assert words in str(e.value)
    assert str(e.value).startswith("transcript: ")
    assert isinstance(e.value, InvalidInput)  # exit 2 / HTTP 400


def test_vtt_name_without_signature() -> None:
    with pytest.raises(TranscriptError, match="must start with the line WEBVTT"):
        parse.parse(b"00:00.000 --> 00:01.000\nx\n", "captions.vtt")


def test_fit_against_the_audio() -> None:
    t = parse.parse(b"[{\"start\": 0, \"end\": 2, \"text\": \"a\"}, "
                    b"{\"start\": 2, \"end\": 10.1, \"text\": \"b\"}]")
    fitted = sanitize.fit(t, 10_000)
    assert fitted.cues[-1].end == 10_000 and fitted.warnings
    with pytest.raises(TranscriptError, match="ends after the audio's end at 9.500 s"):
        sanitize.fit(t, 9_500)
    with pytest.raises(TranscriptError, match="cue 2 .* starts after the audio.s end at 1.900 s"):
        sanitize.fit(t, 1_900)
    with pytest.raises(TranscriptError, match="chapter 'Late' starts at 5.000 s"):
        sanitize.fit(parse.parse(b"{\"cues\": [{\"start\": 0, \"end\": 1, \"text\": \"a\"}], "
                                 b"\"chapters\": [{\"start\": 5, \"title\": \"Late\"}]}"), 4_000)


@st.composite
def clean_cues(draw: st.DrawFn) -> list[Cue]:
    t = draw(st.integers(0, 5000))
    out = []
    for _ in range(draw(st.integers(1, 12))):
        t += draw(st.integers(0, 2000))
        length = draw(st.integers(1, 600_000))
        text = sanitize.clean_text(draw(st.text(min_size=1, max_size=60)))
        if text:
            out.append(Cue(t, t + length, text))
        t += length
    return out or [Cue(0, 1, "x")]


@given(clean_cues())
def test_whole_vtt_and_json_parse_back_to_the_same_cues(cues: list[Cue]) -> None:
    from packager.transcript import segment
    from packager.transcript.cues import Transcript

    assert parse.parse(segment.whole_vtt(Transcript(tuple(cues))).encode()).cues == tuple(cues)
    doc = [{"start": c.start / 1000, "end": c.end / 1000, "text": c.text} for c in cues]
    assert parse.parse(json.dumps(doc).encode()).cues == tuple(cues)
