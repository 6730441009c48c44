"""The demo's script and timeline (sori.demo, pure parts): every sentence of DEMO_PARAGRAPHS
becomes one cue, in order, at the exact place its samples go in the joined speech, with a
chapter at each paragraph; the transcript written is one `sori package --transcript`
accepts as it stands. Also the trailing-silence trim both demos time their cues with."""

from __future__ import annotations

import json
import random
import re
import sys
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packager.transcript import chapters as chapters_mod
from packager.transcript.parse import parse
from sori import demo
from sori.demo_live import LIVE_CHAPTERS, LIVE_SENTENCES, spoken_frames

RATE = 22050


def test_every_sentence_of_every_paragraph_in_order_with_its_chapter_on_the_first() -> None:
    script = demo.sentences()
    words = [w for _title, text in demo.DEMO_PARAGRAPHS for w in text.split()]
    assert " ".join(text for text, _ in script).split() == words  # nothing lost, nothing added
    assert [c for _, c in script if c] == [t for t, _ in demo.DEMO_PARAGRAPHS]
    assert script[0][1] == demo.DEMO_PARAGRAPHS[0][0]
    for text, _ in script:
        assert re.fullmatch(r"\S.*[.!?]", text), text  # whole sentences
        assert len(text) <= 70, text  # one caption on two lines of a phone
    assert len(script) > len(demo.DEMO_PARAGRAPHS)  # several captions per chapter


def test_sentences_split_only_at_sentence_ends() -> None:
    got = demo.sentences((("A", "One, two.  Three?\nFour!"), ("B", "Five.")))
    assert got == [("One, two.", "A"), ("Three?", None), ("Four!", None), ("Five.", "B")]


def test_the_timeline_places_each_sentence_after_its_pause() -> None:
    script = [("First.", "Intro"), ("Second.", None), ("Third.", "Body")]
    frames = [22050, 11025, 4410]
    silences, doc = demo.timeline(script, frames, RATE)
    lead, gap, para, tail = (round(s * RATE) for s in
                             (demo.LEAD, demo.GAP, demo.PARAGRAPH_GAP, demo.TAIL))
    assert silences == [lead, gap, para, tail]
    starts = [lead, lead + 22050 + gap, lead + 22050 + gap + 11025 + para]
    assert doc["cues"] == [
        {"start": round(s * 1000 / RATE) / 1000, "end": round((s + n) * 1000 / RATE) / 1000,
         "text": t} for s, n, (t, _) in zip(starts, frames, script, strict=True)]
    assert doc["chapters"] == [{"start": 0, "title": "Intro"},
                               {"start": doc["cues"][2]["start"], "title": "Body"}]
    assert doc["language"] == "en"


def test_the_demo_transcript_parses_as_package_reads_it() -> None:
    script = demo.sentences()
    rng = random.Random(7)
    frames = [rng.randrange(RATE // 2, 6 * RATE) for _ in script]
    silences, doc = demo.timeline(script, frames, RATE)
    t = parse(json.dumps(doc).encode(), "demo.json")
    assert [c.text for c in t.cues] == [text for text, _ in script]
    total_ms = (sum(silences) + sum(frames)) * 1000 / RATE
    assert t.cues[-1].end <= total_ms
    found = chapters_mod.collect(t)
    assert [c.title for c in found] == [title for title, _ in demo.DEMO_PARAGRAPHS]
    assert found[0].start == 0
    for chapter in found[1:]:  # each later chapter starts with its paragraph's first cue
        assert any(c.start == chapter.start for c in t.cues)
    assert t.language == "en"


@given(st.lists(st.integers(1, 10 * RATE), min_size=1, max_size=40),
       st.sampled_from([8000, 22050, 48000]))
def test_cues_never_overlap_and_follow_the_samples(frames: list[int], rate: int) -> None:
    """Each cue within half a millisecond (the rounding) of its samples, at least 1 ms long."""
    script = [(f"Sentence {i}.", "T" if i % 5 == 0 else None) for i in range(len(frames))]
    silences, doc = demo.timeline(script, frames, rate)
    assert len(silences) == len(frames) + 1
    position = 0
    for pause, n, cue in zip(silences, frames, doc["cues"], strict=False):
        position += pause
        assert abs(cue["start"] - position / rate) <= 0.0005 + 1e-9
        position += n
        assert abs(cue["end"] - max(position / rate, cue["start"] + 0.001)) <= 0.0005 + 1e-9
        assert round(cue["end"] * 1000) > round(cue["start"] * 1000)
    for a, b in zip(doc["cues"], doc["cues"][1:], strict=False):
        assert a["end"] < b["start"]


def test_timeline_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        demo.timeline([("One.", None)], [1, 2], RATE)


def _pcm(samples: list[int]) -> bytes:
    """16-bit little-endian PCM of `samples`."""
    a = array("h", samples)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def test_trim_tail_drops_only_the_trailing_silence() -> None:
    speech = [0, 0, 900, -1200, 30, 800, -5]
    pcm = _pcm(speech + [3, -10, 0, 64, -64] * 50)
    assert demo.trim_tail(pcm, 1) == _pcm(speech[:-1])  # ends at its last sound (800)
    assert demo.trim_tail(_pcm([0] * 100), 1) == b""
    # stereo: whole frames, the last loud sample on either side counts
    stereo = _pcm([5, 5, 500, 0, 0, 700, 0, 0, 1, 1])
    assert demo.trim_tail(stereo, 2) == _pcm([5, 5, 500, 0, 0, 700])
    assert spoken_frames(pcm) == len(speech) - 1
    assert spoken_frames(_pcm([0] * 10)) == 1  # a cue always has a span


def test_live_sentences_are_captions_and_chapters_name_sentences_that_exist() -> None:
    assert 0 in LIVE_CHAPTERS
    assert all(0 <= n < len(LIVE_SENTENCES) for n in LIVE_CHAPTERS)
    for text in LIVE_SENTENCES:
        assert re.fullmatch(r"\S.*[.!?]", text) and len(text) <= 70, text
