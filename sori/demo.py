"""`sori demo` (what `make demo` runs): a spoken sample, packaged, then the origin serving it.

1. If the store already holds a ready asset `demo`, use it (a second `make demo`
   starts serving at once).
2. Otherwise speak DEMO_TEXT with espeak-ng (about 50 s of English), or, when
   espeak-ng is missing or fails, generate a soft tone over pink noise with
   ffmpeg's lavfi sources, and package it as `demo` into the configured store.
3. Print `sori demo: open http://HOST:PORT/` and serve until SIGINT/SIGTERM
   (origin.server.serve; exit code 0 after a graceful stop).
4. Unless `live` is off (`sori demo --no-live`), alongside: once the origin answers, a live
   TTS stream `live-demo` (sori.demo_live): espeak-ng speaking sentence by sentence in bursts
   with pauses, pushed to the live ingest, then ended so it stays as a VOD asset.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from manifests import layout
from sori.config import Config

DEMO_ID = "demo"
DEMO_TITLE = "Welcome to sori"
VOICE = "en-us"
WORDS_PER_MINUTE = 160
SIGNAL_SECONDS = 40

DEMO_TEXT = """\
Welcome to sori. This is a short spoken sample, made on your own machine a moment ago,
so that you have something to listen to right away.
Sori takes a recording, measures its loudness, and encodes it into several qualities at
once. It cuts every quality into small segments on the same grid, and writes both an
H L S playlist and a DASH manifest that point at one shared copy of the media.
When everything is written, the asset record is published last, so a listener never
sees a half finished asset.
The origin server you are using now delivers those files with byte ranges, caching
headers, and compression, the way content delivery networks and players expect.
You can upload your own audio or video through the page, or with the sori package
command. Thank you for listening, and enjoy.
"""


def run_demo(cfg: Config, live: bool = True) -> int:
    """Make sure the demo asset exists, then serve (with the live TTS stream alongside
    unless `live` is false). Returns the process exit code."""
    from origin.server import serve
    from packager.errors import PackagerError
    from storage.errors import StoreError

    try:
        made = asyncio.run(ensure_demo(cfg))
    except (PackagerError, StoreError, OSError) as e:
        print(f"sori demo: could not make the demo asset: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sori demo: interrupted; nothing was published", file=sys.stderr)
        return 130
    print(f"sori demo: {'packaged' if made else 'reusing'} asset {DEMO_ID!r} in the "
          f"{cfg.storage.backend} store", file=sys.stderr)
    print(f"sori demo: open {url_of(cfg)}", flush=True)
    if not live:
        return serve(cfg)
    from sori.demo_live import LiveDemo

    producer = LiveDemo(url_of(cfg), api_key=next(iter(cfg.security.api_keys), None))
    producer.start()  # waits for the origin on its own thread: start-up is not held up
    try:
        return serve(cfg)
    finally:
        producer.stop()


def url_of(cfg: Config) -> str:
    host = cfg.origin.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{cfg.origin.port}/"


async def ensure_demo(cfg: Config) -> bool:
    """Package the demo unless a ready one is in the store; True when it was made."""
    from packager.pipeline import package
    from packager.publish import read_record
    from storage import open_store
    from storage.errors import NotFound

    store = open_store(cfg.storage)
    try:
        record = await read_record(store, DEMO_ID)
        if record is not None and record.get("state") == "ready":
            try:
                await store.stat(layout.key(DEMO_ID, layout.MASTER))
                return False
            except NotFound:
                pass  # a record without its playlist: package again
        with tempfile.TemporaryDirectory(prefix="sori-demo-") as tmp:
            source = await make_sample(Path(tmp))
            print(f"sori demo: packaging {source.name} as {DEMO_ID!r}...", file=sys.stderr)
            await package(source, store, cfg.packager, asset_id=DEMO_ID, title=DEMO_TITLE,
                          kind="audio", progress=_Progress())
        return True
    finally:
        await store.close()


async def make_sample(directory: Path) -> Path:
    """Speech from espeak-ng when it works, else a generated signal (both WAV)."""
    speech = directory / "welcome-to-sori.wav"
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        text = directory / "demo.txt"
        text.write_text(DEMO_TEXT)
        code, err = await _run(espeak, "-v", VOICE, "-s", str(WORDS_PER_MINUTE),
                               "-f", str(text), "-w", str(speech))
        if code == 0 and speech.is_file() and speech.stat().st_size > 44:
            return speech
        print(f"sori demo: espeak-ng failed ({err.strip()[-200:]}); using a generated "
              "signal", file=sys.stderr)
    else:
        print("sori demo: espeak-ng is not installed; using a generated signal",
              file=sys.stderr)
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
