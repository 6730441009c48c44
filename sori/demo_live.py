"""The live half of `sori demo`: a TTS engine speaking into the origin's live ingest.

Once the origin answers, a background thread plays the part of a voice agent: espeak-ng
speaks LIVE_SENTENCES one at a time; each sentence's audio is pushed as raw s16le PCM
(22.05 kHz mono, what espeak-ng and Piper emit) in 200 ms chunks at about 6x real time, and
between sentences the producer pauses 0.5-1.5 s, as if the language model were still
writing. The stream carries its text (issue 14): the sentence goes with its first chunk as
a cue timed on the audio sent (X-Sori-Cues: from the sentence's first sample to its last
spoken one, without espeak-ng's trailing silence), a chapter at LIVE_CHAPTERS, so the page
shows live captions and the sealed asset has its transcript and chapters. After the last sentence the stream is ended, so the origin seals it into an
ordinary VOD asset at the same URLs. Without espeak-ng a generated tone stands in for each
sentence. An asset `live-demo` left by an earlier run is deleted first.

Nothing here may hold up or stop the origin: the thread starts after the origin is
serving, reports a failure on stderr and ends, and is cancelled when the origin stops
(the origin seals a stream that is live at a graceful stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

LIVE_ID = "live-demo"
LIVE_TITLE = "Live: sori speaking"  # short: one line over the stage of a phone
VOICE = "en-us"
WORDS_PER_MINUTE = 160
SAMPLE_RATE = 22050  # espeak-ng's own rate: no resampling on the way in
CHUNK_MS = 200
SPEED = 6.0  # bursts at this many times real time, as a TTS engine produces
PAUSES = (0.5, 1.5)  # seconds between sentences, the language model "writing"
READY_TIMEOUT = 120.0  # for the origin to answer /healthz
SETTLE_TIMEOUT = 60.0  # for a stream left live by a killed demo to be sealed by recovery

LIVE_SENTENCES = (  # 70 characters at most: each is one caption, two lines on a phone
    "This is sori, live.",
    "You hear these words while the rest is still being written.",
    "A speech engine on this machine speaks one sentence at a time.",
    "Its audio goes to the origin in small chunks, faster than real time.",
    "Between sentences it waits, like a voice agent for its language model.",
    "The origin encodes each chunk as it arrives.",
    "It publishes low latency HLS and DASH parts, a quarter second long.",
    "These captions travel with the audio they belong to.",
    "Any player can join from the first word, or jump to the live edge.",
    "When the speech ends, the stream is sealed.",
    "The same links keep working, as an ordinary recording.",
)
# sentence index -> the chapter that starts with it
LIVE_CHAPTERS = {0: "Live", 2: "The speech engine", 5: "The origin", 9: "After the stream"}
LANGUAGE = "en"


def say(message: str, *, out: bool = False) -> None:
    """One line on stderr (or stdout for what the user should act on), flushed at once."""
    print(f"sori demo: {message}", file=sys.stdout if out else sys.stderr, flush=True)


class LiveDemo:
    """The producer thread. `start()` returns at once; `stop()` cancels what is left."""

    def __init__(self, base_url: str, *, api_key: str | None = None,
                 asset_id: str = LIVE_ID, title: str = LIVE_TITLE,
                 sentences: tuple[str, ...] = LIVE_SENTENCES,
                 chapters: dict[int, str] | None = None, speed: float = SPEED,
                 pauses: tuple[float, float] = PAUSES, chunk_ms: int = CHUNK_MS,
                 seed: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.asset_id, self.title = asset_id, title
        self.sentences, self.speed, self.pauses = sentences, speed, pauses
        self.chapters = LIVE_CHAPTERS if chapters is None else chapters
        self.chunk_bytes = SAMPLE_RATE * chunk_ms // 1000 * 2
        self.rng = random.Random(seed)
        self.streaming: str | None = None  # the asset id, once the stream is created
        self.record: dict[str, Any] | None = None  # the sealed ASSET, once ended
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._thread = threading.Thread(target=self._run, name="sori-demo-live", daemon=True)
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Cancel the producer (the origin has stopped) and wait a little for the thread."""
        self._stopping.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has finished already
                loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout)

    # --- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - a thread's last resort: report, never raise
            say(f"the live stream stopped unexpectedly: {type(e).__name__}: {e}")

    async def _main(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        if self._stopping.is_set():
            return
        try:
            async with aiohttp.ClientSession() as session:
                if not await self._wait_for_origin(session):
                    say(f"the live stream was not started: the origin at {self.base_url} "
                        f"did not answer within {READY_TIMEOUT:.0f} s")
                    return
                await self._produce(session)
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            if self.streaming is not None and self.record is None:
                say(f"live stream {self.streaming!r} stopped with the origin (the origin "
                    "seals what it had)")
        except Exception as e:  # noqa: BLE001 - the live part must never stop the demo
            if self._stopping.is_set():
                return  # the origin went away under us: nothing to report
            say(f"the live stream failed ({type(e).__name__}: {e}); the origin and the "
                "packaged sample are unaffected")

    async def _wait_for_origin(self, session: aiohttp.ClientSession) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(self.base_url + "/healthz",
                                       timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return True
            await asyncio.sleep(0.05)
        return False

    async def _produce(self, session: aiohttp.ClientSession) -> None:
        from sori.client import LiveClient

        asset_id = await self._free_id(session)
        with tempfile.TemporaryDirectory(prefix="sori-demo-live-") as tmp:
            voice = Voice(Path(tmp))
            # The first sentence is ready before the stream exists, so a listener who
            # joins at once hears it from its first word.
            pcm = await voice.speak(self.sentences[0])
            fmt = {"codec": "pcm_s16le", "sample_rate": SAMPLE_RATE, "channels": 1}
            async with LiveClient(self.base_url, asset_id, title=self.title, format=fmt,
                                  api_key=self.api_key, session=session,
                                  transcript=True) as live:
                self.streaming = asset_id
                page = f"{self.base_url}/?asset={quote(asset_id, safe='')}"
                say(f"LIVE now: {voice.name} is speaking into {asset_id!r} sentence by "
                    f"sentence; listen at {page}", out=True)
                for n, sentence in enumerate(self.sentences):
                    if n:
                        await asyncio.sleep(self.rng.uniform(*self.pauses))  # "writing"
                        pcm = await voice.speak(sentence)
                    await self._burst(live, pcm, self._cue(live, n, sentence, pcm))
                    say(f"live {asset_id}: sentence {n + 1}/{len(self.sentences)} sent "
                        f"({len(pcm) / 2 / SAMPLE_RATE:.1f} s of audio)")
                rec = await live.end()
            self.record = rec
        if rec.get("state") == "ready":
            say(f"live stream {asset_id!r} ended and was sealed ({rec.get('duration', 0):.1f} s);"
                f" it stays at {page} as an ordinary asset", out=True)
        else:
            say(f"live stream {asset_id!r} ended but was not sealed (state "
                f"{rec.get('state')!r}: {rec.get('error') or 'no detail'})")

    def _cue(self, live: Any, n: int, sentence: str, pcm: bytes) -> dict[str, Any]:
        """Sentence `n` as a cue on the producer's audio: it starts after every byte sent so
        far and ends with its last spoken sample (the origin maps it to media time across
        the silence it fills in while this producer pauses)."""
        start = live.bytes_sent // 2
        cue: dict[str, Any] = {"text": sentence, "start": round(start / SAMPLE_RATE, 3),
                               "end": round((start + spoken_frames(pcm)) / SAMPLE_RATE, 3)}
        if n in self.chapters:
            cue["chapter"] = self.chapters[n]
        return cue

    async def _burst(self, live: Any, pcm: bytes, cue: dict[str, Any]) -> None:
        """One sentence in CHUNK_MS chunks at `speed` times real time (by deadline, so the
        time each request takes does not slow the burst down); its cue with the first."""
        start = time.monotonic()
        every = self.chunk_bytes / 2 / SAMPLE_RATE / self.speed
        for i, offset in enumerate(range(0, len(pcm), self.chunk_bytes)):
            delay = start + i * every - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            cues = {"language": LANGUAGE, "cues": [cue]} if i == 0 else None
            await live.send(pcm[offset:offset + self.chunk_bytes], cues=cues)

    async def _free_id(self, session: aiohttp.ClientSession) -> str:
        """Delete the asset an earlier demo left (a stream still live from a killed run is
        sealed by the origin's recovery first); a fresh suffix when that cannot be done."""
        url = f"{self.base_url}/v1/assets/{quote(self.asset_id, safe='')}"
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            async with session.get(url, headers=self._headers) as resp:
                if resp.status == 404:
                    return self.asset_id
                rec = await resp.json() if resp.status == 200 else {}
            if rec.get("state") != "live" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        async with session.delete(url, headers=self._headers) as resp:
            if resp.status in (204, 404):
                say(f"removed the live asset {self.asset_id!r} of an earlier demo")
                return self.asset_id
            problem = f"{resp.status} {(await resp.text())[:200]}"
        fresh = f"{self.asset_id}-{secrets.token_hex(3)}"
        say(f"could not remove the earlier {self.asset_id!r} ({problem}); streaming as "
            f"{fresh!r} instead")
        return fresh


class Voice:
    """Sentences to s16le PCM at SAMPLE_RATE mono: espeak-ng, or a tone when it is missing
    or fails (said once)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.espeak = shutil.which("espeak-ng")
        self.name = "espeak-ng" if self.espeak else "a generated tone (espeak-ng is missing)"
        if self.espeak is None:
            say("espeak-ng is not installed; the live stream carries a generated tone")

    async def speak(self, sentence: str) -> bytes:
        if self.espeak is not None:
            try:
                return await asyncio.to_thread(self._espeak, self.espeak, sentence)
            except (OSError, ValueError, wave.Error, subprocess.SubprocessError) as e:
                say(f"espeak-ng failed ({e}); the live stream carries a generated tone")
                self.espeak, self.name = None, "a generated tone (espeak-ng failed)"
        return tone(sentence)

    def _espeak(self, espeak: str, sentence: str) -> bytes:
        wav = self.directory / "sentence.wav"
        done = subprocess.run([espeak, "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(wav),
                               "--", sentence], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
                              check=False)
        if done.returncode != 0:
            raise OSError(done.stderr.decode(errors="replace").strip()[-200:]
                          or f"exit status {done.returncode}")
        with wave.open(str(wav), "rb") as w:
            shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            if shape != (SAMPLE_RATE, 1, 2):
                raise ValueError(f"unexpected WAV format {shape} (rate, channels, width)")
            pcm = w.readframes(w.getnframes())
        if not pcm:
            raise ValueError("no audio")
        return pcm  # WAV samples are little-endian: s16le as they are


def spoken_frames(pcm: bytes) -> int:
    """Frames of mono s16le `pcm` up to its last sound (at least one: a cue needs a span)."""
    from sori.demo import trim_tail

    return max(1, len(trim_tail(pcm, 1)) // 2)


def tone(sentence: str) -> bytes:
    """A soft, syllable-like tone over pink-ish noise, about as long as the sentence spoken."""
    seconds = max(1.0, 0.07 * len(sentence))
    n = int(seconds * SAMPLE_RATE)
    rng = random.Random(len(sentence))
    pitch = 180.0 + 60.0 * rng.random()
    out = array("h")
    smooth = 0.0
    for i in range(n):
        t = i / SAMPLE_RATE
        envelope = 0.5 - 0.5 * math.cos(2 * math.pi * 4.0 * t)  # four "syllables" a second
        fade = min(1.0, t / 0.05, (seconds - t) / 0.05)
        smooth = 0.97 * smooth + 0.03 * (rng.random() * 2 - 1)
        value = fade * (envelope * 0.25 * math.sin(2 * math.pi * pitch * t) + 0.5 * smooth)
        out.append(int(max(-1.0, min(1.0, value)) * 32767))
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()
