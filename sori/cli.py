"""The `sori` command line (CONTRACT.md section 2)."""

from __future__ import annotations

import argparse
import asyncio
import json
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

    async def run() -> dict[str, Any]:
        store = open_store(cfg.storage)
        bar, update = _progress_bar()
        try:
            return await package(Path(args.input), store, cfg.packager, asset_id=args.id,
                                 title=args.title, kind=args.kind, progress=update)
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


def cmd_serve(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from origin.server import serve

    code: int = serve(cfg)
    return code


def cmd_demo(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from sori.demo import run_demo

    return run_demo(cfg)


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
    p.add_argument("--json", action="store_true", help="print the asset record as JSON")
    p.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_package)

    s = sub.add_parser("serve", help="run the origin until SIGINT/SIGTERM")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="make and package a spoken sample, then serve it")
    d.add_argument("--host")
    d.add_argument("--port", type=int)
    d.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    d.set_defaults(func=cmd_demo)
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
