"""`sori demo` (what `make demo` runs): a spoken sample, packaged, then the origin serving it.

1. If the store already holds a ready asset `demo` with its transcript, use it (a second
   `make demo` starts serving at once). A `demo` asset of an older run, packaged before
   transcripts existed, is packaged once more so the page shows its captions.
2. Otherwise speak DEMO_PARAGRAPHS with espeak-ng one sentence at a time (about 75 s of
   English), join the sentences with short pauses, and write the transcript a TTS pipeline
   knows for free: each sentence a cue at the exact time its audio lies in the joined file,
   a chapter at each paragraph. Package both as `demo` (captions, transcript.vtt/.txt,
   chapters, and the data-saver rung when the configuration keeps it on). When espeak-ng
   is missing or fails: a soft tone over pink noise from ffmpeg's lavfi sources, with no
   transcript.
3. Print `sori demo: open http://HOST:PORT/` and serve until SIGINT/SIGTERM
   (origin.server.serve; exit code 0 after a graceful stop).
4. Unless `live` is off (`sori demo --no-live`), alongside: once the origin answers, a live
   TTS stream `live-demo` (sori.demo_live): espeak-ng speaking sentence by sentence in bursts
   with pauses, each sentence's text sent with its audio (live captions), pushed to the
   live ingest, then ended so it stays as a VOD asset.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
import wave
from array import array
from pathlib import Path
from typing import Any

from manifests import layout
from sori.config import Config

DEMO_ID = "demo"
DEMO_TITLE = "Welcome to sori"
VOICE = "en-us"
WORDS_PER_MINUTE = 160
SIGNAL_SECONDS = 40
LANGUAGE = "en"

# (chapter title, paragraph): each paragraph a chapter, each sentence a caption. Short
# sentences (70 characters at most), because each is shown whole as one caption, which
# then fits on two lines of a phone.
DEMO_PARAGRAPHS: tuple[tuple[str, str], ...] = (
    ("Welcome",
     "Welcome to sori. This is a short sample, spoken on your own machine a moment ago. "
     "Turn on the captions, and read along."),
    ("How it is packaged",
     "Sori measures the loudness of a recording. Then it encodes several qualities at once. "
     "Every quality is cut into small segments on the same grid. One copy of the media "
     "serves both HLS and DASH players. The asset record is published last. So no one ever "
     "sees a half finished asset."),
    ("Captions and chapters",
     "The speech engine that read this text knew when it said each sentence. So the words "
     "come with the audio. You see them as captions, and in the transcript below. Click a "
     "line to hear it again. Chapters are marked on the seek bar. Press C to turn the "
     "captions on or off."),
    ("Data saver and offline",
     "On a slow mobile network, there is a data saver quality in Opus. It needs about a "
     "quarter of the bytes. Several recordings can also be downloaded as one offline "
     "bundle."),
    ("Serving and analytics",
     "This origin serves every file with byte ranges and caching headers. That is what "
     "players and content delivery networks expect. It also counts downloads, listeners and "
     "playback quality. Open the analytics page to see them."),
    ("Your turn",
     "Upload your own audio or video through the page, or with sori package. Give it a "
     "transcript, and it gets captions too. Thank you for listening, and enjoy."),
)
DEMO_TEXT = "\n\n".join(text for _title, text in DEMO_PARAGRAPHS) + "\n"

# Silence in the joined speech, in seconds: before the first sentence, between sentences,
# between paragraphs (a chapter break is heard), after the last one.
LEAD, GAP, PARAGRAPH_GAP, TAIL = 0.3, 0.55, 1.1, 0.8
QUIET = 64  # |sample| (16-bit) at or below which the end of a sentence's audio is silence

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


# --- pure: the script and its timeline -------------------------------------------------


def sentences(paragraphs: tuple[tuple[str, str], ...] = DEMO_PARAGRAPHS,
              ) -> list[tuple[str, str | None]]:
    """Every sentence in order, with its paragraph's chapter title on the first one."""
    out: list[tuple[str, str | None]] = []
    for title, paragraph in paragraphs:
        for i, sentence in enumerate(_SENTENCE_END.split(" ".join(paragraph.split()))):
            out.append((sentence, title if i == 0 else None))
    return out


def timeline(script: list[tuple[str, str | None]], frames: list[int], rate: int,
             ) -> tuple[list[int], dict[str, Any]]:
    """Where each spoken sentence goes in the joined audio, and the transcript that says so.

    `frames`: the length of each sentence's audio in sample frames at `rate`. Returns the
    silence (frames) to put before each sentence, plus the trailing silence as a last item,
    and the JSON transcript ({"language", "cues", "chapters"}, packager.transcript.parse's
    form): a cue per sentence spanning exactly its samples (times rounded to the
    millisecond, WebVTT's resolution), a chapter at each paragraph's first sentence (the
    first chapter from 0, so the whole timeline is in a chapter)."""
    if len(script) != len(frames) or rate <= 0:
        raise ValueError("one length per sentence, and a positive rate")
    silences: list[int] = []
    cues: list[dict[str, Any]] = []
    chapters: list[dict[str, Any]] = []
    position = 0
    for i, ((text, chapter), n) in enumerate(zip(script, frames, strict=True)):
        pause = LEAD if i == 0 else PARAGRAPH_GAP if chapter is not None else GAP
        silences.append(round(pause * rate))
        position += silences[-1]
        start = round(position * 1000 / rate)
        end = max(start + 1, round((position + n) * 1000 / rate))  # a cue needs a span
        cues.append({"start": start / 1000, "end": end / 1000, "text": text})
        if chapter is not None:
            chapters.append({"start": 0 if not chapters else start / 1000, "title": chapter})
        position += n
    silences.append(round(TAIL * rate))
    return silences, {"language": LANGUAGE, "cues": cues, "chapters": chapters}


def trim_tail(pcm: bytes, channels: int) -> bytes:
    """16-bit little-endian PCM without its trailing silence (espeak-ng ends every sentence
    with about 0.35 s of it), so a caption ends when its words do and every pause between
    sentences is the one chosen here."""
    samples = array("h", pcm[:len(pcm) // (2 * channels) * 2 * channels])
    if sys.byteorder == "big":
        samples.byteswap()
    end = len(samples)
    while end > 0 and abs(samples[end - 1]) <= QUIET:
        end -= 1
    end = -(-end // channels) * channels  # whole frames
    return pcm[:end * 2]


def run_demo(cfg: Config, live: bool = True) -> int:
    """Make sure the demo asset exists, then serve (with the live TTS stream alongside
    unless `live` is false). Returns the process exit code."""
    from origin.server import serve
    from packager.errors import PackagerError
    from storage.errors import StoreError

    try:
        made, record = asyncio.run(ensure_demo(cfg))
    except (PackagerError, StoreError, OSError) as e:
        print(f"sori demo: could not make the demo asset: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sori demo: interrupted; nothing was published", file=sys.stderr)
        return 130
    print(f"sori demo: {'packaged' if made else 'reusing'} asset {DEMO_ID!r} in the "
          f"{cfg.storage.backend} store", file=sys.stderr)
    base = url_of(cfg)
    print(f"sori demo: open {base}", flush=True)
    for line in _tour(base, record, cfg):
        print(f"sori demo:   {line}", file=sys.stderr)
    if not live:
        return serve(cfg)
    from sori.demo_live import LiveDemo

    producer = LiveDemo(base, api_key=next(iter(cfg.security.api_keys), None))
    producer.start()  # waits for the origin on its own thread: start-up is not held up
    try:
        return serve(cfg)
    finally:
        producer.stop()


def _tour(base: str, record: dict[str, Any], cfg: Config) -> list[str]:
    """What there is to see, for someone who has just run `make demo`."""
    lines = [f"the sample: {base}?asset={DEMO_ID}"]
    extras = [name for field, name in (("transcript", "captions (press C) and a transcript"),
                                       ("chapters", "chapters on the seek bar"))
              if record.get(field)]
    if any(r.get("id") == layout.DATA_SAVER_RENDITION for r in record.get("renditions", [])):
        extras.append("an Opus data-saver rung")
    if extras:
        lines[0] += f" ({', '.join(extras)})"
    if cfg.analytics.enabled:
        lines.append(f"listening analytics: {base}analytics")
    return lines


def url_of(cfg: Config) -> str:
    host = cfg.origin.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{cfg.origin.port}/"


async def ensure_demo(cfg: Config) -> tuple[bool, dict[str, Any]]:
    """Package the demo unless a ready one with its transcript is in the store: whether it
    was made, and its record."""
    from packager.pipeline import package
    from packager.publish import read_record
    from storage import open_store
    from storage.errors import NotFound

    store = open_store(cfg.storage)
    try:
        record = await read_record(store, DEMO_ID)
        older: dict[str, Any] | None = None  # a ready demo of an older run, no transcript
        if record is not None and record.get("state") == "ready":
            try:
                await store.stat(layout.key(DEMO_ID, layout.MASTER))
                if record.get("transcript") or shutil.which("espeak-ng") is None:
                    return False, record  # (without espeak-ng a new one has none either)
                older = record
            except NotFound:
                pass  # a record without its playlist: package again
        with tempfile.TemporaryDirectory(prefix="sori-demo-") as tmp:
            source, transcript = await make_sample(Path(tmp))
            if older is not None:
                if transcript is None:
                    return False, older  # speech failed: the older demo beats a tone
                print(f"sori demo: the {DEMO_ID!r} asset of an earlier run has no captions "
                      "or chapters; packaging it again with its transcript", file=sys.stderr)
            print(f"sori demo: packaging {source.name}"
                  f"{' with ' + transcript.name if transcript else ''} as {DEMO_ID!r}...",
                  file=sys.stderr)
            made = await package(source, store, cfg.packager, asset_id=DEMO_ID,
                                 title=DEMO_TITLE, kind="audio", progress=_Progress(),
                                 transcript=_parse(transcript) if transcript else None)
        return True, made
    finally:
        await store.close()


def _parse(path: Path) -> Any:
    """The transcript file read as `sori package --transcript` reads it."""
    from packager.transcript.parse import parse

    return parse(path.read_bytes(), path.name)


async def make_sample(directory: Path) -> tuple[Path, Path | None]:
    """The sample (WAV) and its JSON transcript: speech from espeak-ng when it works, else a
    generated signal without a transcript."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        try:
            return await make_speech(espeak, directory)
        except (OSError, ValueError, wave.Error) as e:
            print(f"sori demo: espeak-ng failed ({str(e).strip()[-200:]}); using a generated "
                  "signal", file=sys.stderr)
    else:
        print("sori demo: espeak-ng is not installed; using a generated signal",
              file=sys.stderr)
    return await make_signal(directory), None


async def make_speech(espeak: str, directory: Path) -> tuple[Path, Path]:
    """Each sentence spoken on its own, its length read from its WAV header, then all of
    them joined with pauses into one WAV, and the transcript of where each one lies."""
    script = sentences()
    parts: list[bytes] = []
    shape: tuple[int, int, int] | None = None
    for n, (text, _chapter) in enumerate(script):
        part = directory / f"sentence-{n:02d}.wav"
        code, err = await _run(espeak, "-v", VOICE, "-s", str(WORDS_PER_MINUTE),
                               "-w", str(part), "--", text)
        if code != 0:
            raise OSError(err.strip() or f"exit status {code}")
        with wave.open(str(part), "rb") as w:
            this = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            if shape is not None and this != shape:
                raise ValueError(f"sentence {n + 1} came out as {this}, not {shape} "
                                 "(rate, channels, width)")
            shape = this
            if this[2] != 2:
                raise ValueError(f"sentence {n + 1} came out as {8 * this[2]}-bit audio")
            parts.append(trim_tail(w.readframes(w.getnframes()), this[1]))
        if not parts[-1]:
            raise ValueError(f"no audio for sentence {n + 1}")
    assert shape is not None
    rate, channels, width = shape
    frame = channels * width
    silences, doc = timeline(script, [len(p) // frame for p in parts], rate)
    speech = directory / "welcome-to-sori.wav"
    with wave.open(str(speech), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        for pause, audio in zip(silences, [*parts, b""], strict=True):
            out.writeframes(b"\0" * pause * frame + audio)
    transcript = directory / "welcome-to-sori.json"
    transcript.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")
    return speech, transcript


async def make_signal(directory: Path) -> Path:
    """A soft tone over pink noise, SIGNAL_SECONDS long, from ffmpeg's lavfi sources."""
    signal = directory / "sori-tone.wav"
    d = SIGNAL_SECONDS
    graph = (f"sine=frequency=220:sample_rate=48000:duration={d},volume=0.25[a];"
             f"sine=frequency=330:sample_rate=48000:duration={d},volume=0.12[b];"
             f"anoisesrc=color=pink:sample_rate=48000:amplitude=0.03:duration={d}[c];"
             "[a][b][c]amix=inputs=3:normalize=0,"
             "tremolo=f=0.5:d=0.4,afade=t=in:d=2,"
             f"afade=t=out:st={d - 3}:d=3[out]")
    code, err = await _run("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                           "-filter_complex", graph, "-map", "[out]", "-ac", "2",
                           str(signal))
    if code != 0:
        raise OSError(f"ffmpeg could not generate the demo signal: {err.strip()[-300:]}")
    return signal


async def _run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _out, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace")


class _Progress:
    """Phase changes on stderr (a line each, fine in a log or a terminal)."""

    def __init__(self) -> None:
        self.phase = ""

    def __call__(self, fraction: float, phase: str, *_: Any) -> None:
        if phase != self.phase:
            self.phase = phase
            print(f"sori demo:   {phase} ({fraction:.0%})", file=sys.stderr)
