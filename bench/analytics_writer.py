"""How many events a second the analytics writer sustains (issue 13).

    .venv/bin/python -m bench.analytics_writer [--events 50000] [--postgres URL|auto|none] [--json]

One Recorder (the origin runs one per worker process) is fed pre-built Hits as fast as
its queue takes them (`put`, which waits for room instead of dropping), and the clock
runs from the first event to the end of `flush()`: every event classified (OPAWG
User-Agent, cached), placed (iptocc), hashed with the day's salt, given its media span
and CMCD, and inserted in batches of `[analytics] batch_size`. The events are what a
player population makes: 2,000 clients (IPv4 and IPv6, a dozen real User-Agents), each
walking an episode's segments, a tenth of them with CMCD, some progressive ranges.

SQLite is a fresh file (WAL) in a temporary directory. PostgreSQL: `--postgres auto`
(the default) starts a throw-away server like the tests do (tests/pg_support.py) when
the binaries are installed; a URL uses that server; `none` skips it.

Reference: the request rate one origin worker serves at its peak in bench.origin
(bench/README: about 15,000 req/s per worker, 30,000-37,000 on two), i.e. the rate a
worker's writer would have to absorb if every request were a media hit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from analytics.events import AssetInfo, Hit
from analytics.writer.recorder import Recorder
from settings import AnalyticsConfig

REPO = Path(__file__).resolve().parents[1]
REFERENCE_RPS = 15_000  # one origin worker's peak in bench.origin (see the module doc)
UAS = [
    "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)",
    "AppleCoreMedia/1.0.0.20K71 (iPhone; U; CPU OS 16_1 like Mac OS X; en_us)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "PocketCasts/1.0 (Pocket Casts Feed Parser; +http://pocketcasts.com/)",
    "Spotify/8.8.0 Android/33 (SM-G991B)",
    "AntennaPod/3.2.0",
    "Podcasts/1.0 CFNetwork/1410.0.3 Darwin/22.6.0",
    "stagefright/1.2 (Linux;Android 13)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Googlebot-News Audio",
    "okhttp/4.9.2",
]
EP = AssetInfo("ep", "audio", 1800.0, 4.0, 21_600_000, {"low": 48_000, "medium": 96_000})


def events(n: int, day_start: float) -> list[Hit]:
    out: list[Hit] = []
    client = 0
    while len(out) < n:
        client += 1
        ip = (f"81.{client % 200}.{client // 200 % 250}.{client % 250 + 1}" if client % 3
              else f"2a02:8010:{client:x}::{client % 7 + 1}")
        ua = UAS[client % len(UAS)]
        sid = f'sid="{client:08x}",' if client % 10 == 0 else None
        ts = day_start + client
        if client % 7 == 0:
            for k in range(3):
                first = k * 2_000_000
                out.append(Hit(ts + k, "ep", "download", "GET", 206, 2_000_000,
                               f"bytes={first}-{first + 1_999_999}", ip, ua, info=EP))
            continue
        for seg in range(1, 40):
            rendition = "low" if seg % 5 else "medium"
            data = f"{sid}br=96,mtp=4000,ot=a{',su' if seg < 3 else ''}" if sid else None
            out.append(Hit(ts + seg, "ep", f"v/v1/{rendition}/seg_{seg:05d}.m4s", "GET", 200,
                           48_000, None, ip, ua, data, info=EP))
    return out[:n]


def run(database: str, hits: list[Hit], batch_size: int) -> dict[str, Any]:
    cfg = dataclasses.replace(AnalyticsConfig(), database=database, batch_size=batch_size)
    rec = Recorder(cfg)
    rec.start()
    rec.database.ping()  # connected and the schema made before the clock starts
    t0 = time.perf_counter()
    for h in hits:
        rec.put(h)
    ok = rec.flush(600)
    seconds = time.perf_counter() - t0
    rec.close()
    c = rec.counts()
    return {"events": len(hits), "seconds": round(seconds, 3), "flushed": ok,
            "events_per_s": round(c["written"] / seconds), **c}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--batch-size", type=int, default=AnalyticsConfig().batch_size)
    ap.add_argument("--postgres", default="auto", help="auto | none | a postgresql:// URL")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    day_start = time.time() // 86400 * 86400
    hits = events(args.events, day_start)
    result: dict[str, Any] = {"cores": os.cpu_count(), "reference_rps": REFERENCE_RPS}
    with tempfile.TemporaryDirectory(prefix="sori-bench-analytics-") as tmp:
        result["sqlite"] = run(str(Path(tmp) / "analytics.sqlite3"), hits, args.batch_size)
    if args.postgres == "auto":
        sys.path.insert(0, str(REPO / "tests"))
        try:
            import pg_support

            with pg_support.PostgresServer() as pg:
                result["postgresql"] = run(pg.url, hits, args.batch_size)
        except RuntimeError as e:  # no PostgreSQL binaries here
            result["postgresql"] = {"skipped": str(e).splitlines()[0]}
    elif args.postgres != "none":
        result["postgresql"] = run(args.postgres, hits, args.batch_size)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"analytics writer, {args.events} events (batches of {args.batch_size}), "
          f"{result['cores']} cores")
    for name in ("sqlite", "postgresql"):
        r = result.get(name)
        if r is None:
            continue
        if "skipped" in r:
            print(f"  {name:10s}: skipped ({r['skipped']})")
            continue
        print(f"  {name:10s}: {r['events_per_s']:8,d} events/s  ({r['written']} written, "
              f"{r['dropped']} dropped, {r['seconds']:.2f} s)  "
              f"vs one origin worker's peak {REFERENCE_RPS:,d} req/s: "
              f"{r['events_per_s'] / REFERENCE_RPS:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
