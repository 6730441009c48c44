"""What the live benchmark pushes, and the reference it is measured against.

- Speech: sentences spoken by espeak-ng (22.05 kHz mono s16le, as Piper-class engines
  emit), made once and cached under bench/out/live_speech/ as raw PCM.
- Producers, as schedules of (seconds from the first byte, chunk): `realtime` sends 200 ms
  chunks at the pace of the audio (chunk i, holding [0.2 i, 0.2 i + 0.2), at 0.2 i);
  `burst` sends each sentence at `speed` x real time (its 200 ms chunks 20 ms apart) and
  then pauses, as a TTS engine does while the language model writes the next sentence.
- The reference: ffmpeg's own HLS muxer (fMP4, 1 s segments, EVENT playlist, every segment
  kept, program date time, temp files renamed into place so a reader never sees a partial
  file) fed the same chunks on its stdin at the same pace, writing into a directory that
  nginx serves.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

from bench import speech

RATE = 22050
CHANNELS = 1
FORMAT = {"codec": "pcm_s16le", "sample_rate": RATE, "channels": CHANNELS}
BYTES_PER_SECOND = RATE * CHANNELS * 2
CHUNK_SECONDS = 0.2
CACHE = speech.OUT / "live_speech"
PAUSES = (0.6, 2.5, 1.2, 4.0, 0.8, 3.0)  # the language model thinking, between sentences

Schedule = list[tuple[float, bytes]]


def sentences(count: int = 16) -> list[bytes]:
    """`count` distinct sentences as raw PCM (made with espeak-ng on first use)."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("bench: espeak-ng is required (apt-get install espeak-ng)")
    CACHE.mkdir(parents=True, exist_ok=True)
    texts = speech._paragraphs(count, 1, seed=11)  # one sentence each
    out = []
    for i, text in enumerate(texts):
        pcm = CACHE / f"s{i:02d}.pcm"
        if not pcm.exists():
            wav = CACHE / f"s{i:02d}.wav"
            subprocess.run(["espeak-ng", "-v", "en", "-s", "170", "-w", str(wav), text],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            with wave.open(str(wav)) as w:
                if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
                    raise SystemExit(f"bench: espeak-ng wrote {w.getparams()}, not 22.05 kHz "
                                     "mono 16-bit")
                data = w.readframes(w.getnframes())
            pcm.write_bytes(data)
            wav.unlink()
        out.append(pcm.read_bytes())
    return out


def _chunks(data: bytes) -> list[bytes]:
    size = int(CHUNK_SECONDS * BYTES_PER_SECOND)
    return [data[o:o + size] for o in range(0, len(data), size)]


def realtime(said: list[bytes], seconds: float) -> Schedule:
    """200 ms chunks at the pace of the audio, sentences back to back (repeated as needed)
    until `seconds` of audio."""
    speech_bytes = b""
    i = 0
    while len(speech_bytes) < seconds * BYTES_PER_SECOND:
        speech_bytes += said[i % len(said)]
        i += 1
    speech_bytes = speech_bytes[:int(seconds * BYTES_PER_SECOND) // 2 * 2]
    return [(n * CHUNK_SECONDS, c) for n, c in enumerate(_chunks(speech_bytes))]


def burst(said: list[bytes], seconds: float, speed: float = 10.0) -> Schedule:
    """Each sentence at `speed` x real time, then a pause (PAUSES, in turn), until
    `seconds` of wall time."""
    out: Schedule = []
    t = 0.0
    i = 0
    while t < seconds:
        for c in _chunks(said[i % len(said)]):
            out.append((t, c))
            t += CHUNK_SECONDS / speed
        t += PAUSES[i % len(PAUSES)]
        i += 1
    return out


def schedule(kind: str, said: list[bytes], seconds: float) -> Schedule:
    return realtime(said, seconds) if kind == "realtime" else burst(said, seconds)


# --- the reference: ffmpeg's HLS muxer behind nginx ----------------------------------------

REF_BITRATE = 128_000
REF_RATE = 44_100


def ffmpeg_hls_args(out_dir: Path, aac_coder: str = "fast") -> list[str]:
    """ffmpeg's own HLS muxer at its lowest-latency settings for this input: raw PCM on
    stdin with no probing or input buffering, one AAC rendition (the default ladder's
    middle rung), fMP4 segments of 1 s, an EVENT playlist keeping every segment, program
    date time on each segment, each file written under a temporary name and renamed."""
    return ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
            "-fflags", "+nobuffer", "-flags", "+low_delay", "-probesize", "32",
            "-analyzeduration", "0",
            "-f", "s16le", "-ar", str(RATE), "-ac", str(CHANNELS), "-i", "pipe:0",
            "-c:a", "aac", "-aac_coder", aac_coder, "-b:a", str(REF_BITRATE),
            "-ar", str(REF_RATE), "-ac", "2",
            "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
            "-hls_playlist_type", "event", "-hls_segment_type", "fmp4",
            "-hls_flags", "independent_segments+program_date_time+temp_file",
            "-hls_fmp4_init_filename", "init.mp4",
            "-hls_segment_filename", str(out_dir / "seg_%05d.m4s"),
            str(out_dir / "index.m3u8")]


NGINX_CONF = """\
{user}
worker_processes {workers};
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
worker_rlimit_nofile 20000;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    gzip on;
    gzip_types text/javascript application/vnd.apple.mpegurl;
    types {{
        text/javascript js;
        application/vnd.apple.mpegurl m3u8;
        video/iso.segment m4s;
        video/mp4 mp4;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root};
        location = /healthz {{ return 200 "ok"; }}
        location /vendor/ {{ add_header Cache-Control "public, max-age=3600" always; }}
        # A live playlist is rewritten in place: never cached. Parts of it that exist
        # never change.
        location ~ \\.m3u8$ {{
            add_header Cache-Control "no-cache" always;
            add_header Access-Control-Allow-Origin "*" always;
        }}
        location ~ \\.(m4s|mp4)$ {{
            add_header Cache-Control "public, max-age=31536000, immutable" always;
            add_header Access-Control-Allow-Origin "*" always;
        }}
    }}
}}
"""


def nginx_root(work: Path, hls_js: Path) -> Path:
    """nginx's document root: /vendor/hls.min.js (the player's copy), /live/ for ffmpeg."""
    root = work / "www"
    (root / "vendor").mkdir(parents=True, exist_ok=True)
    (root / "live").mkdir(exist_ok=True)
    shutil.copyfile(hls_js, root / "vendor" / "hls.min.js")
    return root
