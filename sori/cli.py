"""The `sori` command line (CONTRACT.md section 2)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from sori import config as config_mod

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _fail(message: str, code: int) -> int:
    print(f"sori: {message}", file=sys.stderr)
    return code


def _progress_bar() -> Any:
    """A tqdm bar on stderr when it is a terminal; else a no-op callback."""
    if not sys.stderr.isatty():
        return None, lambda fraction, phase: None
    from tqdm import tqdm

    bar = tqdm(total=1000, unit="‰", file=sys.stderr, leave=False,
               bar_format="{desc:>9} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def update(fraction: float, phase: str) -> None:
        bar.set_description_str(phase)
        bar.update(max(0, int(fraction * 1000) - bar.n))

    return bar, update


def cmd_package(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from packager.errors import InvalidInput, PackagerError
    from packager.pipeline import package
    from packager.record import with_public_url
    from storage import open_store
    from storage.errors import StoreError

    try:
        transcript = _read_transcript(args.transcript) if args.transcript else None
    except InvalidInput as e:
        return _fail(str(e), EXIT_BAD_INPUT)

    async def run() -> dict[str, Any]:
        store = open_store(cfg.storage)
        bar, update = _progress_bar()
        try:
            return await package(Path(args.input), store, cfg.packager, asset_id=args.id,
                                 title=args.title, kind=args.kind,
                                 access="private" if args.private else None,
                                 progress=update, transcript=transcript)
        finally:
            if bar is not None:
                bar.close()
            await store.close()

    try:
        rec = asyncio.run(run())
    except InvalidInput as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    except (PackagerError, StoreError) as e:
        return _fail(f"packaging failed: {e}", EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was published", 130)
    if args.json:
        print(json.dumps(with_public_url(rec, cfg.origin.public_url), indent=2))
    else:
        print(rec["id"])
    return EXIT_OK


def _read_transcript(name: str) -> Any:
    """`--transcript FILE` read and parsed before any packaging work (a bad one exits 2)."""
    from packager.transcript.cues import MAX_BYTES, TranscriptError
    from packager.transcript.parse import parse

    path = Path(name)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise TranscriptError(f"cannot read {name}: {e.strerror or e}") from None
    return parse(data, path.name)


def cmd_sign(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from manifests import layout
    from sori import access

    if args.prefix is None and not layout.is_valid_asset_id(args.id):
        return _fail(f"invalid asset id {args.id!r}", EXIT_BAD_INPUT)
    if not cfg.security.signing_keys:
        return _fail("no signing key: add one to [security] signing_keys in the config "
                     "(for example: openssl rand -base64 32)", EXIT_BAD_INPUT)
    try:
        if args.prefix is not None:
            token = access.prefix_token(cfg, args.prefix, ttl=args.ttl, user=args.user,
                                        client_ip=args.ip)
            print(json.dumps({"prefix": args.prefix, "token": token,
                              "hls": f"{cfg.origin.public_url.rstrip('/')}/assets/"
                                     f"{{id}}/~{token}/master.m3u8"}, indent=2))
            return EXIT_OK
        urls = access.playback_urls(cfg, args.id, ttl=args.ttl, user=args.user,
                                    client_ip=args.ip)
    except ValueError as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    print(json.dumps(urls, indent=2))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from origin.server import serve

    code: int = serve(cfg)
    return code


def cmd_worker(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    if cfg.jobs.backend != "redis":
        return _fail('sori worker takes jobs from a queue: set [jobs] backend = "redis" '
                     '(SORI_JOBS_BACKEND=redis) and redis_url; with the default "local" '
                     "backend, sori serve packages uploads itself", EXIT_BAD_INPUT)
    from jobqueue.worker import run

    return run(cfg)


def cmd_demo(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from sori.demo import run_demo

    return run_demo(cfg, live=not args.no_live)


class _Unreachable(Exception):
    """`sori live` had no answer from the origin when creating the stream."""


def _origin_url(origin: config_mod.OriginConfig) -> str:
    """The configured origin as a client reaches it (a wildcard address means this host)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(origin.host, origin.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{origin.port}"


def cmd_live(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    """`sori live`: decode INPUT with ffmpeg and push it to the origin's live ingest."""
    from manifests.layout import is_valid_asset_id
    from packager.errors import InvalidInput, PackagerError
    from sori.client import LiveError

    if not is_valid_asset_id(args.id):
        return _fail(f"invalid asset id {args.id!r}: use 1-128 letters, digits, '.', '_' or '-', "
                     "starting with a letter or digit", EXIT_BAD_INPUT)
    if not 10 <= args.chunk_ms <= 10_000:
        return _fail(f"--chunk-ms: {args.chunk_ms} is not between 10 and 10000", EXIT_BAD_INPUT)
    url = (args.url or _origin_url(cfg.origin)).rstrip("/")
    if not url.startswith(("http://", "https://")):
        return _fail(f"--url: {url!r} is not an http:// or https:// URL", EXIT_BAD_INPUT)
    api_key = args.api_key or os.environ.get("SORI_API_KEY") or None
    try:
        cues = _live_cues(args.transcript) if args.transcript else None
        rec = asyncio.run(_push_live(args, Path(args.input).absolute(), cfg, url, api_key, cues))
    except InvalidInput as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    except _Unreachable as e:
        return _fail(f"cannot reach the origin at {url}: {e}", EXIT_FAILURE)
    except LiveError as e:
        return _fail(f"live stream {args.id}: {e}", EXIT_FAILURE)
    except PackagerError as e:
        return _fail(str(e), EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail(f"interrupted; the stream {args.id} stays open until the origin's silence "
                     "timeout seals it", 130)
    if rec.get("state") != "ready":
        return _fail(f"live stream {args.id} ended but was not sealed (state "
                     f"{rec.get('state')!r}: {rec.get('error') or 'no detail'})", EXIT_FAILURE)
    print(rec["id"])
    return EXIT_OK


def _live_cues(name: str) -> list[dict[str, Any]]:
    """`sori live --transcript FILE`: its cues as the X-Sori-Cues JSON objects, in time
    order (seconds of the input's audio, which is the stream's audio: it is sent whole)."""
    from packager.transcript.cues import MAX_BYTES, TranscriptError
    from packager.transcript.parse import parse

    try:
        with Path(name).open("rb") as f:
            t = parse(f.read(MAX_BYTES + 1), Path(name).name)
    except OSError as e:
        raise TranscriptError(f"cannot read {name}: {e.strerror or e}") from None
    marks = {c.start: c.title for c in t.chapters}
    out = []
    for c in t.cues:
        item: dict[str, Any] = {"text": c.text, "start": c.start / 1000, "end": c.end / 1000}
        title = c.chapter or marks.get(c.start)
        if title:
            item["chapter"] = title
        out.append(item)
    return out


async def _push_live(args: argparse.Namespace, path: Path, cfg: config_mod.Config, url: str,
                     api_key: str | None,
                     cues: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Probe, decode to s16le PCM as a stream, create the live asset once audio has come
    out (so a bad input creates nothing), send it chunk by chunk, end it: the final ASSET."""
    from urllib.parse import urljoin

    from packager import process
    from packager.errors import InvalidInput
    from packager.probe import probe
    from sori.client import LiveClient, LiveError, Pacer, PcmFormat, pcm_rate_for

    process.require_tools()
    info = await probe(path, max_duration=cfg.packager.max_duration, kind="audio")
    assert info.audio is not None
    fmt = PcmFormat(pcm_rate_for(info.audio.sample_rate), 1 if info.audio.channels == 1 else 2)
    size = fmt.chunk_bytes(args.chunk_ms)
    proc = await asyncio.create_subprocess_exec(
        process.FFMPEG, "-nostdin", "-hide_banner", "-v", "error",
        "-i", f"file:{path}", "-map", f"0:{info.audio.index}", "-vn", "-sn", "-dn",
        "-f", "s16le", "-c:a", "pcm_s16le", "-ac", str(fmt.channels),
        "-ar", str(fmt.sample_rate), "pipe:1",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.create_task(_last_line(proc.stderr))
    try:
        chunk = await _read_chunk(proc.stdout, size)
        if not chunk:
            code = await proc.wait()
            raise InvalidInput(f"{path.name}: no audio could be decoded "
                               f"({await errors or f'ffmpeg exited {code}'})")
        async with contextlib.AsyncExitStack() as stack:
            try:
                live = await stack.enter_async_context(LiveClient(
                    url, args.id, title=args.title or path.stem, format=fmt.as_format(),
                    api_key=api_key, access="private" if args.private else None,
                    transcript=cues is not None))
            except LiveError as e:
                if e.status is None:
                    raise _Unreachable(str(e)) from None
                if e.status in (400, 409):  # the id is taken, or the origin refuses the format
                    raise InvalidInput(str(e)) from None
                raise
            print(f"sori: live at {urljoin(url + '/', str(live.asset.get('hls', '')))}",
                  file=sys.stderr)
            pacer = Pacer() if args.realtime else None
            pending = list(cues or [])  # each goes with the chunk its audio starts in
            while chunk:
                if pacer is not None:
                    await pacer.wait(fmt.seconds(live.bytes_sent))
                until = fmt.seconds(live.bytes_sent + len(chunk))
                due = [c for c in pending if c["start"] < until]
                pending = pending[len(due):]
                await live.send(chunk, cues=due or None)
                chunk = await _read_chunk(proc.stdout, size)
            code = await proc.wait()
            rec = await live.end()
            if code != 0:
                raise InvalidInput(
                    f"{path.name}: decoding failed after {fmt.seconds(live.bytes_sent):.1f} s "
                    f"of audio ({await errors or f'ffmpeg exited {code}'}); the stream was "
                    "ended with what had been sent")
            return rec
    finally:
        if proc.returncode is None:
            proc.kill()
            # wait() returns once the pipes are closed too: read what is left to the end.
            while await proc.stdout.read(65536):
                pass
            await proc.wait()
        errors.cancel()


async def _read_chunk(stream: asyncio.StreamReader, size: int) -> bytes:
    """The next `size` bytes, fewer at the end of the stream, b"" after it."""
    try:
        return await stream.readexactly(size)
    except asyncio.IncompleteReadError as e:
        return e.partial


async def _last_line(stream: asyncio.StreamReader) -> str:
    """Drain a process's stderr (so it never blocks on a full pipe); its last line."""
    last = ""
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").strip()
        last = text or last
    return last


def _with_overrides(cfg: config_mod.Config, args: argparse.Namespace) -> config_mod.Config:
    import dataclasses

    origin = cfg.origin
    if getattr(args, "host", None):
        origin = dataclasses.replace(origin, host=args.host)
    if getattr(args, "port", None) is not None:
        origin = dataclasses.replace(origin, port=args.port)
    return dataclasses.replace(cfg, origin=origin).validate()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sori", description=(
        "HLS/DASH packaging and origin server for speech and video."))
    parser.add_argument("--config", help="config file (default: $SORI_CONFIG or built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("package", help="package one media file into the store")
    p.add_argument("input", help="source file (wav, mp3, m4a, ogg, opus, flac, webm, ...)")
    p.add_argument("--id", help="asset id (default: from the file name)")
    p.add_argument("--title", help="title (default: the file name)")
    p.add_argument("--kind", choices=("auto", "audio", "video"), default="auto")
    p.add_argument("--private", action="store_true",
                   help="playable only through signed URLs (sori sign)")
    p.add_argument("--transcript", metavar="FILE",
                   help="what the audio says, timed: WebVTT, SRT or JSON "
                        "[{\"start\", \"end\", \"text\", \"chapter\"?}] (seconds); published "
                        "as captions, transcript.vtt/.txt and chapters")
    p.add_argument("--json", action="store_true", help="print the asset record as JSON")
    p.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_package)

    sg = sub.add_parser("sign", help="print signed playback URLs of a private asset")
    sg.add_argument("id", nargs="?", default="", help="asset id")
    sg.add_argument("--ttl", type=int, help="seconds the URLs stay valid "
                                            "(default: [security] playback_ttl)")
    sg.add_argument("--user", help="the user the URLs are for (kept in the token)")
    sg.add_argument("--ip", help="bind the URLs to this client address (IPv6: its /64)")
    sg.add_argument("--prefix", help="instead of one asset: every asset whose id starts "
                                     "with PREFIX (prints the token and a URL pattern)")
    sg.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    sg.set_defaults(func=cmd_sign)

    s = sub.add_parser("serve", help="run the origin until SIGINT/SIGTERM")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="package upload jobs taken from the queue "
                                      "([jobs] backend = \"redis\") until SIGINT/SIGTERM")
    w.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    w.set_defaults(func=cmd_worker)

    lv = sub.add_parser("live", help="push an audio file to a running origin's live ingest")
    lv.add_argument("input", help="audio file (any format ffmpeg reads)")
    lv.add_argument("--id", required=True, help="asset id of the live stream")
    lv.add_argument("--url", help="origin base URL (default: the configured origin)")
    lv.add_argument("--title", help="title (default: the file name)")
    lv.add_argument("--realtime", action="store_true",
                    help="send at real-time pace (default: as fast as the origin takes it)")
    lv.add_argument("--chunk-ms", type=int, default=200,
                    help="milliseconds of audio per chunk (default 200)")
    lv.add_argument("--api-key", help="write key (default: $SORI_API_KEY)")
    lv.add_argument("--transcript", metavar="FILE",
                    help="what INPUT says, timed (WebVTT, SRT or JSON, as for sori package): "
                         "each cue is sent with the chunk its audio starts in, and becomes "
                         "live captions and the sealed asset's transcript")
    lv.add_argument("--private", action="store_true",
                    help="playable only through signed URLs (sori sign)")
    lv.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    lv.set_defaults(func=cmd_live)

    d = sub.add_parser("demo", help="make and package a spoken sample, then serve it")
    d.add_argument("--host")
    d.add_argument("--port", type=int)
    d.add_argument("--no-live", action="store_true",
                   help="skip the live TTS stream that runs alongside the sample")
    d.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    d.set_defaults(func=cmd_demo)

    from sori import bundle_cli  # offline bundles (issue 14)

    bundle_cli.add_parser(sub)

    from sori import analytics_cli  # listening analytics (issue 13)

    analytics_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_mod.load(getattr(args, "sub_config", None) or args.config)
        cfg = _with_overrides(cfg, args)
    except config_mod.ConfigError as e:
        return _fail(f"config: {e}", EXIT_BAD_INPUT)
    try:
        result: int = args.func(args, cfg)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    return result


if __name__ == "__main__":
    sys.exit(main())
