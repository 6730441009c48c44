"""`sori analytics`: import an edge's access log, print the reports (issue 13).

    sori analytics import LOGFILE [--source import]    nginx/CDN "combined" log (or .gz)
    sori analytics summary [--from D] [--to D] [--asset ID] [--json | --csv]

Behind a CDN the origin sees each immutable segment once; what listeners received is
in the edge's log. `import` reads it line by line (gzip too), turns each line into a
hit (analytics.combined_log: the token of a signed URL left out), gives it the asset's
facts from its record in the store (read once per asset), hands it to the same
recorder the origin uses and waits until everything is written. Importing a log twice
counts its bytes twice (downloads and listeners are per client and day, so they do not
change): import each log once.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from settings import Config

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
WRITE_WAIT = 600.0  # seconds the import waits for the writer at the end


def _fail(message: str, code: int) -> int:
    print(f"sori: {message}", file=sys.stderr)
    return code


def add_parser(sub: Any) -> None:
    """The `analytics` subcommand and its two actions (registered by sori.cli)."""
    a = sub.add_parser("analytics", help="listening analytics: import edge logs, reports")
    a.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    actions = a.add_subparsers(dest="action", required=True)

    imp = actions.add_parser("import", help="count an nginx/CDN access log in the combined "
                                            "format (gzip too) into [analytics] database")
    imp.add_argument("logfile", help="the access log (combined format; .gz read as gzip)")
    imp.add_argument("--source", default="import",
                     help="what the rows say they came from (default: import)")
    imp.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    imp.set_defaults(func=cmd_import)

    rep = actions.add_parser("summary", help="print downloads, listeners, bytes, countries "
                                             "and apps over a period")
    rep.add_argument("--from", dest="first", help="first UTC day (YYYY-MM-DD; default: 29 "
                                                  "days before --to)")
    rep.add_argument("--to", dest="last", help="last UTC day, inclusive (default: today)")
    rep.add_argument("--asset", help="one asset's figures (with renditions and QoE)")
    out = rep.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV")
    rep.add_argument("--config", dest="sub_config", help=argparse.SUPPRESS)
    rep.set_defaults(func=cmd_summary)


# --- import ---------------------------------------------------------------------------------

def _open_log(path: Path) -> TextIO:
    """The log as text lines; gzip when it starts with gzip's magic number. Raises OSError,
    and _NotText for a file that is not text (a NUL in its first bytes)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    gz = magic == b"\x1f\x8b"
    if gz:
        with gzip.open(path, "rb") as head:
            start = head.read(4096)
    else:
        with path.open("rb") as head:
            start = head.read(4096)
    if b"\0" in start:
        raise _NotText("not a text log (binary data)")
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return path.open("r", encoding="utf-8", errors="replace", newline="")


class _NotText(Exception):
    """The file is not an access log at all."""


class _Unreadable(Exception):
    """The log could not be read to its end (what came before was imported)."""


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        yield line.rstrip("\r\n")


def cmd_import(args: argparse.Namespace, cfg: Config) -> int:
    path = Path(args.logfile)
    if not cfg.analytics.enabled:
        return _fail("analytics are disabled ([analytics] enabled = false)", EXIT_BAD_INPUT)
    source = str(args.source).strip()
    if not source or len(source) > 32 or not source.replace("-", "").replace("_", "").isalnum():
        return _fail(f"--source: {args.source!r} is not a short name (letters, digits, - and _)",
                     EXIT_BAD_INPUT)
    try:
        stream = _open_log(path)
    except IsADirectoryError:
        return _fail(f"{path}: is a directory, not a log file", EXIT_BAD_INPUT)
    except _NotText as e:
        return _fail(f"{path}: {e}", EXIT_BAD_INPUT)
    except (OSError, EOFError, zlib.error) as e:
        return _fail(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})",
                     EXIT_BAD_INPUT)
    try:
        with stream:
            counts = asyncio.run(_import(stream, cfg, source))
    except _Unreadable as e:  # a truncated or corrupt gzip file
        return _fail(f"{path}: {e}", EXIT_BAD_INPUT)
    except _Unwritable as e:
        return _fail(f"analytics database {cfg.analytics.database}: {e}", EXIT_FAILURE)
    print(f"{counts['lines']} lines, {counts['imported']} imported, "
          f"{counts['skipped']} skipped (malformed or not media)"
          + (f", {counts['lost']} not written (see the log)" if counts["lost"] else ""))
    return EXIT_OK if not counts["lost"] else EXIT_FAILURE


class _Unwritable(Exception):
    """The database could not take the imported rows."""


async def _import(stream: TextIO, cfg: Config, source: str) -> dict[str, int]:
    from analytics import combined_log
    from analytics.db import DatabaseDown, open_database
    from analytics.writer.recorder import Recorder
    from storage import open_store

    try:
        open_database(cfg.analytics.database).ping()
    except DatabaseDown as e:
        raise _Unwritable(f"cannot be reached ({e})") from None
    recorder = Recorder(cfg.analytics)
    store = open_store(cfg.storage)
    infos = _AssetInfos(store)
    counts = {"lines": 0, "imported": 0, "skipped": 0, "lost": 0}
    recorder.start()
    lines = _lines(stream)
    try:
        while True:
            try:
                line = next(lines)
            except StopIteration:
                break
            except (OSError, EOFError, zlib.error) as e:  # a truncated or corrupt gzip
                await asyncio.to_thread(recorder.flush, WRITE_WAIT)
                raise _Unreadable(f"cannot read past line {counts['lines']} ({e}); the "
                                  f"{counts['imported']} media requests before it were "
                                  "imported") from None
            counts["lines"] += 1
            hit = combined_log.parse(line, source=source)
            if hit is None:
                counts["skipped"] += 1
                continue
            info = await infos.get(hit.asset)
            if info is not None:
                hit = _with_info(hit, info)
            # The writer's pace, not the reader's: put() waits for room in the queue.
            if not await asyncio.to_thread(recorder.put, hit, WRITE_WAIT):
                raise _Unwritable("the writer stopped taking rows")
            counts["imported"] += 1
        await asyncio.to_thread(recorder.flush, WRITE_WAIT)
    finally:
        await asyncio.to_thread(recorder.close, WRITE_WAIT)
        await store.close()
    written = recorder.counts()
    counts["lost"] = int(written.get("dropped", 0)) + int(written.get("error", 0))
    return counts


def _with_info(hit: Any, info: Any) -> Any:
    import dataclasses

    return dataclasses.replace(hit, info=info)


class _AssetInfos:
    """AssetInfo per asset id from its record in the store, read once (None: unknown)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._known: dict[str, Any] = {}

    async def get(self, asset: str) -> Any:
        if asset in self._known:
            return self._known[asset]
        from analytics.events import AssetInfo
        from manifests import layout
        from packager.publish import read_record
        from storage.errors import StoreError

        info = None
        try:
            rec = await read_record(self.store, asset)
            if rec is not None:
                size = 0
                rel = rec.get("download_key")
                if isinstance(rel, str) and rel:
                    try:
                        size = (await self.store.stat(layout.key(asset, rel))).size
                    except StoreError:
                        size = 0
                info = AssetInfo.from_record(rec, download_bytes=size)
        except StoreError as e:
            print(f"sori: the record of {asset} cannot be read ({e}); its hits are counted "
                  "without it", file=sys.stderr)
        self._known[asset] = info
        return info


# --- reports --------------------------------------------------------------------------------

def cmd_summary(args: argparse.Namespace, cfg: Config) -> int:
    from analytics.db import DatabaseDown, open_database
    from analytics.reports import Reports, parse_period
    from manifests import layout

    if not cfg.analytics.enabled:
        return _fail("analytics are disabled ([analytics] enabled = false)", EXIT_BAD_INPUT)
    try:
        first, last = parse_period(args.first, args.last)
    except ValueError as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    if args.asset is not None and not layout.is_valid_asset_id(args.asset):
        return _fail(f"invalid asset id {args.asset!r}", EXIT_BAD_INPUT)
    db = open_database(cfg.analytics.database)
    reports = Reports(db)
    t0 = time.monotonic()
    try:
        if args.asset is None:
            data = reports.summary(first, last)
        else:
            data = reports.asset(args.asset, first, last)
    except DatabaseDown as e:
        return _fail(f"analytics database {cfg.analytics.database}: cannot be reached ({e})",
                     EXIT_FAILURE)
    finally:
        db.close()
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif args.csv:
        sys.stdout.write(reports.summary_csv(first, last) if args.asset is None
                         else reports.asset_csv(args.asset, first, last))
    else:
        _print_text(data, first, last, args.asset, time.monotonic() - t0)
    return EXIT_OK


def _print_text(data: dict[str, Any], first: Any, last: Any, asset: str | None,
                seconds: float) -> None:
    what = f"asset {asset}" if asset else "all assets"
    print(f"{what}, {first} to {last} (UTC days): {data.get('downloads', 0)} downloads, "
          f"{data.get('listeners', 0)} listeners, {_size(int(data.get('bytes', 0)))}")
    rows = data.get("assets") or []
    if rows:
        print(f"  {'asset':<32} {'downloads':>9} {'listeners':>9} {'bytes':>10}")
        for row in rows:
            print(f"  {str(row.get('id')):<32} {row.get('downloads', 0):>9} "
                  f"{row.get('listeners', 0):>9} {_size(int(row.get('bytes', 0))):>10}")
    for key in ("countries", "apps", "renditions"):
        values = data.get(key) or {}
        if values:
            print(f"  {key}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in values.items()))
    for key in ("startup_ms_p50", "rebuffer_ratio"):
        if data.get(key) is not None:
            print(f"  {key}: {data[key]}")
    print(f"  (read in {seconds * 1000:.0f} ms)")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
