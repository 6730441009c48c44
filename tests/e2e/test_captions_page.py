"""End to end: the player page's captions, transcript panel and chapter marks (issue 14).

A TTS pipeline knows what it said and when: the test speaks six sentences with espeak-ng one
by one, joins them with short silences, and so knows each sentence's exact time span. It
packages the joined speech with `sori package --transcript` (a JSON transcript whose cues are
those spans, three of them starting chapters), serves it with `sori serve`, and drives the
page in Chromium (captions_drive.mjs):

- captions are off in a fresh profile; the toggle turns them on, the text over the stage is
  the sentence being spoken at the playhead while it plays, and the choice survives a reload;
- the transcript panel lists every sentence, highlights the one being spoken, and a click on a
  line plays from that line's start;
- the seek bar shows a mark where each chapter after the first starts, and its hover preview
  and aria-valuetext name the chapter;
- 'c' toggles captions; dash.js shows the same captions as hls.js; on a phone the panel fits
  the screen with finger-sized lines.

Nothing is skipped: a missing tool is a failure that says what to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_player import ARTIFACTS, CHROMIUM, E2E_DIR, REPO, SORI, _check_tools

sys.path.append(str(REPO / "tests" / "integration"))
from real_clients import local_env, serve  # noqa: E402 - shared helpers

pytestmark = pytest.mark.e2e

DRIVER = E2E_DIR / "captions_drive.mjs"
ASSET = "captioned"
GAP = 0.4  # seconds of silence between sentences
SENTENCES = [
    ("Welcome to a recording with captions.", "Welcome"),
    ("Every sentence you hear was typed before it was spoken.", None),
    ("So the packager knows exactly when each one begins and ends.", None),
    ("The player draws the words over the stage as they are said.", "How it works"),
    ("A click on a line of the transcript plays from that line.", None),
    ("Thank you for listening, and goodbye.", "Goodbye"),
]
LINE = 4  # the transcript line the driver clicks
LAG = 0.3  # s: the page redraws on timeupdate (every 250 ms in Chromium) and animation frames


def _speak(path: Path, text: str) -> tuple[bytes, int, int, int]:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text],
                   check=True, capture_output=True, timeout=60)
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes()), w.getframerate(), w.getsampwidth(), w.getnchannels()


def _talk(work: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The sentences spoken and joined into one WAV; the cues are their exact spans."""
    frames = b""
    cues: list[dict[str, Any]] = []
    rate = width = channels = 0
    for i, (text, chapter) in enumerate(SENTENCES):
        pcm, rate, width, channels = _speak(work / f"s{i}.wav", text)
        start = len(frames) / (rate * width * channels)
        frames += pcm
        end = len(frames) / (rate * width * channels)
        cue: dict[str, Any] = {"start": round(start, 3), "end": round(end, 3), "text": text}
        if chapter:
            cue["chapter"] = chapter
        cues.append(cue)
        frames += b"\0" * (int(GAP * rate) * width * channels)
    wav = work / "talk.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return wav, cues


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _check_tools()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("captions")
    wav, cues = _talk(work)
    transcript = work / "talk.json"
    transcript.write_text(json.dumps(cues))
    env = local_env(work / "store")
    proc = subprocess.run([str(SORI), "package", str(wav), "--id", ASSET, "--title", "Captioned talk",
                           "--transcript", str(transcript)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"sori package --transcript exited {proc.returncode}:\n{proc.stderr}"
    with serve(env, work / "serve.log") as origin:
        yield {"base": origin.base, "cues": cues}


def _index_at(cues: list[dict[str, Any]], t: float) -> int:
    for i, cue in enumerate(cues):
        if cue["start"] <= t < cue["end"]:
            return i
    return -1


def _cue_at(cues: list[dict[str, Any]], t: float) -> str:
    i = _index_at(cues, t)
    return str(cues[i]["text"]) if i >= 0 else ""


def _drive(site: dict[str, Any]) -> dict[str, Any]:
    chapters = [c for c in site["cues"] if c.get("chapter")]
    hover_at = (chapters[1]["start"] + chapters[2]["start"]) / 2  # inside the second chapter
    scenario = {"base": site["base"], "id": ASSET, "chromium": str(CHROMIUM),
                "artifacts": str(ARTIFACTS), "samples": 40, "line": LINE, "hoverAt": hover_at}
    proc = subprocess.run(["node", str(DRIVER)], input=json.dumps(scenario), capture_output=True,
                          text=True, timeout=240, cwd=E2E_DIR)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, (
        f"captions_drive.mjs exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    (ARTIFACTS / "captions-drive.json").write_text(json.dumps(result, indent=2))
    assert "error" not in result, result["error"]
    return result


@pytest.fixture(scope="module")
def seen(site: dict[str, Any]) -> dict[str, Any]:
    return _drive(site)


def _assert_in_sync(samples: list[dict[str, Any]], cues: list[dict[str, Any]], what: str) -> int:
    """Every sample's caption is the sentence at its playhead (or, within LAG of a boundary,
    the one just before); returns how many samples showed text."""
    shown = 0
    for s in samples:
        if s["paused"]:
            continue
        now, before = _cue_at(cues, s["t"]), _cue_at(cues, s["t"] - LAG)
        text = s["overlay"]["text"] if not s["overlay"]["hidden"] else ""
        assert text in (now, before), f"{what}: at {s['t']:.2f} s the page shows {text!r}, " \
                                      f"the sentence there is {now!r}"
        shown += bool(text)
    return shown


def test_the_record_names_the_transcript_and_chapters(site: dict[str, Any]) -> None:
    with urllib.request.urlopen(f"{site['base']}/v1/assets/{ASSET}", timeout=5) as res:
        record = json.load(res)
    for field in ("transcript", "chapters"):
        assert isinstance(record.get(field), str), f"the record has no {field!r} URL: {record}"
        with urllib.request.urlopen(site["base"] + record[field], timeout=5) as res:
            assert res.status == 200


def test_captions_off_at_first_then_the_toggle_shows_them(seen: dict[str, Any],
                                                          site: dict[str, Any]) -> None:
    initial = seen["steps"]["initial"]["view"]
    assert initial["button"]["hidden"] is False, "no captions button for a captioned asset"
    assert initial["on"] is False and initial["button"]["pressed"] == "false"
    assert initial["overlay"]["hidden"] is True
    toggled = seen["steps"]["toggled"]
    assert toggled["on"] is True and toggled["button"]["pressed"] == "true"
    assert toggled["stored"] == "true", "the choice is not kept in localStorage"
    samples = seen["steps"]["playing"]
    assert all(s["engine"] == "hls.js" for s in samples)
    assert samples[-1]["t"] - samples[0]["t"] > 3, "the asset did not play"
    shown = _assert_in_sync(samples, site["cues"], "hls.js")
    assert shown >= len(samples) // 2, f"captions shown in only {shown} of {len(samples)} samples"
    assert any(s["overlay"]["visible"] for s in samples)


def test_the_transcript_panel_lists_and_follows_the_speech(seen: dict[str, Any],
                                                          site: dict[str, Any]) -> None:
    panel = seen["steps"]["initial"]["panel"]
    assert panel["hidden"] is False
    assert [line["text"] for line in panel["lines"]] == [c["text"] for c in site["cues"]]
    for line, cue in zip(panel["lines"], site["cues"], strict=True):
        assert abs(line["start"] - cue["start"]) <= 0.002
        assert cue["text"] in line["label"]  # what a screen reader announces
    highlighted = set()
    for s in seen["steps"]["playing"]:
        if s["paused"]:
            continue
        expected = {_index_at(site["cues"], s["t"]), _index_at(site["cues"], s["t"] - LAG)}
        assert s["highlighted"] in expected, (
            f"at {s['t']:.2f} s line {s['highlighted']} is highlighted, expected one of {expected}")
        highlighted.add(s["highlighted"])
    assert len(highlighted - {-1}) >= 2, "the highlight did not move along the lines"


def test_a_click_on_a_line_plays_from_it(seen: dict[str, Any], site: dict[str, Any]) -> None:
    cue = site["cues"][LINE]
    right = seen["steps"]["clicked"]["right"]
    assert abs(right["t"] - cue["start"]) < 0.35, f"clicked line {LINE} at {cue['start']} s, " \
                                                  f"the playhead went to {right['t']:.2f} s"
    later = seen["steps"]["clicked"]["later"]
    assert not later[-1]["paused"] and later[-1]["t"] > right["t"]
    assert later[0]["highlighted"] == LINE
    assert later[0]["overlay"]["text"] == cue["text"]


def test_chapter_marks_on_the_seek_bar(seen: dict[str, Any], site: dict[str, Any]) -> None:
    marks = seen["steps"]["initial"]["marks"]
    chapters = [c for c in site["cues"] if c.get("chapter")]
    assert [c["title"] for c in marks["chapters"]] == [c["chapter"] for c in chapters]
    drawn = marks["marks"]
    # The first chapter starts at 0, where the bar starts: no mark for it.
    assert [m["start"] for m in drawn] == pytest.approx([c["start"] for c in chapters[1:]], abs=0.002)
    assert all(m["visible"] for m in drawn)
    for mark, chapter in zip(drawn, chapters[1:], strict=True):
        assert chapter["chapter"] in mark["title"]
        assert mark["fraction"] == pytest.approx(chapter["start"] / marks["duration"], abs=0.01)
    hover = seen["steps"]["hover"]
    assert chapters[1]["chapter"] in hover["preview"], hover
    # The slider's spoken value: a time, then the chapter under the playhead.
    assert any(f", {c['chapter']}" in hover["valuetext"] for c in chapters), hover


def test_keyboard_and_reload_keep_the_choice(seen: dict[str, Any], site: dict[str, Any]) -> None:
    keys = seen["steps"]["keys"]
    assert keys["off"]["on"] is False and keys["off"]["overlay"]["hidden"] is True
    assert keys["off"]["stored"] == "false"
    assert keys["on"]["on"] is True
    reloaded = seen["steps"]["reloaded"]
    assert reloaded["before"]["on"] is True and reloaded["before"]["button"]["pressed"] == "true"
    assert _assert_in_sync(reloaded["playing"], site["cues"], "after a reload") > 0


def test_dash_shows_the_same_captions(seen: dict[str, Any], site: dict[str, Any]) -> None:
    samples = seen["steps"]["dash"]
    assert all(s["engine"] == "dash.js" for s in samples)
    assert _assert_in_sync(samples, site["cues"], "dash.js") > 0
    assert not seen["fatal"], seen["fatal"]


def test_readable_on_a_phone(seen: dict[str, Any]) -> None:
    phone = seen["steps"]["phone"]
    assert phone["playing"]
    assert phone["scrollWidth"] <= phone["viewport"], "the page scrolls sideways on a phone"
    assert phone["fontSize"] >= 15
    assert min(phone["lineHeights"]) >= 40, "transcript lines too small to tap"
    assert max(phone["lineRights"]) <= phone["viewport"]
    assert phone["overlay"] and phone["overlay"]["left"] >= 0 and phone["overlay"]["right"] <= phone["viewport"]


def test_no_page_errors(seen: dict[str, Any]) -> None:
    assert not seen["pageErrors"], seen["pageErrors"]
    assert not seen["consoleErrors"], seen["consoleErrors"]
