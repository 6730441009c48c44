"""`sori bundle ID... -o FILE [--rendition R]`: the offline bundle of `GET /v1/offline`,
written from the store directly (no origin needed), byte for byte the same as the HTTP
body for the same ids and rendition.

The file appears whole or not at all: the bytes go to a temporary file next to FILE,
which is renamed over it only once complete, so an interrupted or refused run leaves
nothing behind (and never half of an earlier bundle).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from sori import config as config_mod

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _fail(message: str, code: int) -> int:
    print(f"sori: {message}", file=sys.stderr)
    return code


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("bundle", help="write an offline bundle (ZIP) of several assets, "
                                      "as GET /v1/offline gives it")
    b.add_argument("ids", nargs="+", metavar="ID", help="asset ids, in bundle order")
    b.add_argument("-o", "--output", required=True, help="the ZIP file to write")
    b.add_argument("--rendition", help="carry this audio rendition's track instead of "
                                       "each asset's progressive file")
    b.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    b.set_defaults(func=cmd_bundle)


def cmd_bundle(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from origin.offline import sources
    from storage.errors import StoreError

    out = Path(args.output)
    if not out.parent.is_dir():
        return _fail(f"cannot write {out}: {out.parent} is not a directory", EXIT_BAD_INPUT)
    if out.is_dir():
        return _fail(f"cannot write {out}: it is a directory", EXIT_BAD_INPUT)
    try:
        ids = sources.parse_ids(args.ids, cfg.origin.offline_max_assets)
        rendition = sources.parse_rendition(args.rendition)
        size = asyncio.run(_write(cfg, ids, rendition, out))
    except sources.Refused as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    except StoreError as e:
        return _fail(f"bundle failed: {e}", EXIT_FAILURE)
    except OSError as e:
        return _fail(f"cannot write {out}: {e.strerror or e}", EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", 130)
    print(f"{out} {size}")
    return EXIT_OK


async def _write(cfg: config_mod.Config, ids: list[str], rendition: str | None,
                 out: Path) -> int:
    from origin.offline import sources
    from origin.offline.checksums import Checksums
    from origin.offline.stream import read_range
    from storage import open_store

    store = open_store(cfg.storage)
    try:
        plan = await sources.plan_for(store, ids, Checksums(store), rendition=rendition,
                                      public_url=cfg.origin.public_url)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in read_range(store, plan, 0, plan.size):
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return plan.size
    finally:
        await store.close()
