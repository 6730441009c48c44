"""Benchmark input: long spoken-word WAVs made with espeak-ng and sox, cached under bench/out/.

A base reading of distinct sentences (a few minutes, several paragraphs read at
different speeds and pitches with pauses between them) is repeated and trimmed by sox
to the requested length. The result is what espeak-ng writes: 22.05 kHz mono 16-bit
WAV. Files are keyed by length (`speech_60min.wav`) and reused across runs.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
RATE = 22050

_SUBJECTS = ["the archivist", "a tired courier", "the harbour master", "our neighbour",
             "the night editor", "a young engineer", "the river pilot", "the choir",
             "an old clockmaker", "the committee", "a travelling surgeon", "the baker",
             "the lighthouse keeper", "a careful auditor", "the orchestra", "my grandmother"]
_VERBS = ["carried", "measured", "painted", "forgot", "repaired", "described", "counted",
          "borrowed", "photographed", "delivered", "questioned", "rebuilt", "translated",
          "weighed", "buried", "recorded"]
_OBJECTS = ["a crate of lemons", "the broken barometer", "seventeen letters", "the blue ledger",
            "a map of the coast", "the winter accounts", "an unsigned contract",
            "the brass telescope", "a basket of pears", "the railway timetable",
            "a forgotten song", "the signal lamps", "two hundred tickets", "the mayor's speech"]
_PLACES = ["before the storm", "near the old bridge", "in the northern quarter",
           "after midnight", "behind the station", "on the fourth floor", "during the festival",
           "at the edge of the market", "under a grey sky", "beside the canal",
           "in early September", "while the bells rang"]
_CLAUSES = ["although nobody had asked", "because the road was closed",
            "and then went home without a word", "so the numbers finally agreed",
            "but the rain had already started", "which surprised everyone in the room",
            "as if it were the most natural thing", "until the lamps went out"]


def _sentence(rng: random.Random) -> str:
    s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)}"
    if rng.random() < 0.6:
        s += f", {rng.choice(_CLAUSES)}"
    if rng.random() < 0.3:
        s += f", at {rng.randint(1, 12)} {rng.choice(['past', 'to'])} {rng.randint(1, 12)}"
    if rng.random() < 0.2:
        s += f", for {rng.randint(2, 9999)} crowns"
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!"])


def _paragraphs(count: int, sentences: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    for _ in range(count):
        para: list[str] = []
        while len(para) < sentences:
            s = _sentence(rng)
            if s not in seen:
                seen.add(s)
                para.append(s)
        out.append(" ".join(para))
    return out


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def base_reading(work: Path) -> Path:
    """About five minutes of distinct sentences: 8 paragraphs of 12 sentences, each read
    with its own speed and pitch, joined with short pauses."""
    speeds = [150, 165, 175, 185, 160, 170, 180, 155]
    pitches = [40, 55, 50, 35, 60, 45, 50, 42]
    parts = []
    for i, text in enumerate(_paragraphs(8, 12)):
        wav = work / f"p{i}.wav"
        _run(["espeak-ng", "-v", "en", "-s", str(speeds[i]), "-p", str(pitches[i]),
              "-w", str(wav), text])
        padded = work / f"p{i}_pad.wav"
        _run(["sox", str(wav), str(padded), "pad", "0", f"{0.6 + 0.1 * i:.1f}"])
        parts.append(padded)
    base = work / "base.wav"
    _run(["sox", *map(str, parts), str(base)])
    return base


def seconds_of(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def speech_wav(minutes: float) -> Path:
    """A cached spoken-word WAV of exactly `minutes` minutes (made on first use)."""
    for tool in ("espeak-ng", "sox", "soxi"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is required (apt-get install espeak-ng sox)")
    OUT.mkdir(parents=True, exist_ok=True)
    label = f"{minutes:g}".replace(".", "_")
    target = OUT / f"speech_{label}min.wav"
    if target.exists():
        return target
    seconds = minutes * 60.0
    with tempfile.TemporaryDirectory(prefix="speech-", dir=OUT) as tmp:
        work = Path(tmp)
        base = base_reading(work)
        repeats = max(0, int(seconds // seconds_of(base)))
        partial = work / "out.wav"
        # sox streams: `repeat` spools the base to a temp file, never the whole output.
        _run(["sox", str(base), "-r", str(RATE), "-c", "1", "-b", "16", str(partial),
              "repeat", str(repeats), "trim", "0", f"{seconds:.3f}"])
        partial.replace(target)
    return target


if __name__ == "__main__":
    import sys

    p = speech_wav(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
    print(p, f"{seconds_of(p):.1f} s")
