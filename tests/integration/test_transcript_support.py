"""Support for the transcript tests (no tests here): speech made sentence by sentence with
espeak-ng, so the transcript's times are known exactly, as a TTS pipeline knows them, and
writers of that transcript as JSON, SRT and WebVTT.

Imported by bare name (`import test_transcript_support`) from tests/integration and
tests/e2e.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

SENTENCES = (
    ("Welcome to the first chapter of this short talk.", "Opening"),
    ("Every sentence here was spoken by a speech engine.", None),
    ("So the packager knows exactly when each word was said.", None),
    ("This is the second chapter, about captions.", "Captions"),
    ("Players show these words while the audio plays.", None),
    ("And the transcript panel follows along.", None),
)
GAP = 0.4  # seconds of silence between sentences


@dataclass(frozen=True)
class TimedCue:
    start: float
    end: float
    text: str
    chapter: str | None


def timed_speech(directory: Path, sentences: tuple[tuple[str, str | None], ...] = SENTENCES,
                 lead: float = 0.3) -> tuple[Path, list[TimedCue]]:
    """One WAV of the sentences spoken in turn with GAP seconds between them (and `lead`
    before the first); the exact time of each sentence in it."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is missing: apt-get install espeak-ng (`make demo` does)"
    directory.mkdir(parents=True, exist_ok=True)
    frames: list[bytes] = []
    cues: list[TimedCue] = []
    rate = width = 0
    t = 0.0

    def silence(seconds: float) -> None:
        nonlocal t
        n = round(seconds * rate)
        frames.append(b"\0" * n * width)
        t += n / rate

    for i, (text, chapter) in enumerate(sentences):
        part = directory / f"sentence{i}.wav"
        subprocess.run([espeak, "-v", "en-us", "-s", "160", "-w", str(part), text],
                       check=True, capture_output=True, timeout=60)
        with wave.open(str(part)) as w:
            assert w.getnchannels() == 1
            rate, width = w.getframerate(), w.getsampwidth()
            data = w.readframes(w.getnframes())
            n = w.getnframes()
        silence(lead if i == 0 else GAP)
        cues.append(TimedCue(round(t, 3), round(t + n / rate, 3), text, chapter))
        frames.append(data)
        t += n / rate
    silence(0.5)
    out = directory / "talk.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"".join(frames))
    return out, cues


def as_json(cues: list[TimedCue]) -> str:
    items = []
    for c in cues:
        item: dict[str, object] = {"start": c.start, "end": c.end, "text": c.text}
        if c.chapter:
            item["chapter"] = c.chapter
        items.append(item)
    return json.dumps({"language": "en", "cues": items}, indent=1)


def _ts(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return (f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}"
            f"{sep}{ms % 1000:03d}")


def as_srt(cues: list[TimedCue]) -> str:
    return "".join(f"{i}\n{_ts(c.start, ',')} --> {_ts(c.end, ',')}\n{c.text}\n\n"
                   for i, c in enumerate(cues, 1))


def as_vtt(cues: list[TimedCue]) -> str:
    # markup a player would render, which the packager must strip to plain text
    return "WEBVTT\n\n" + "".join(
        f"{_ts(c.start, '.')} --> {_ts(c.end, '.')} line:90%\n<v Narrator><i>{c.text}</i></v>\n\n"
        for c in cues)
