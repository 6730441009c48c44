"""Startup time: from page load to the first `playing` event, sori against nginx.

    .venv/bin/python -m bench.startup [--runs 10] [--no-video] [--dash] [--warm] [--rtt MS]
                                      [--settle MS] [--json] [--keep]

Packages a spoken-word asset (espeak-ng, about 16 s) and a video asset (ffmpeg testsrc +
sine, 10 s, 1280x720: the 720p/480p/360p/240p ladder) with `sori package` into a temporary
local store, then serves the same files two ways:

- `sori` : `sori serve` over the store, default configuration (as `make demo` runs it);
- `nginx`: nginx-light serving the same store directory as `/assets/`, and a static copy of
  what the origin serves for the page (`/`, `/player/*`, `/vendor/*`, `/v1/assets`,
  `/v1/assets/{id}`, downloaded once from the running origin) at the same paths
  (`worker_processes auto`, sendfile, access_log off).

bench/startup.mjs drives Debian's Chromium over its DevTools pipe (bench/browser.mjs: no
Playwright in the measured window): each run is a fresh browser context, whose new window
is left to settle (--settle, 1 s) before it opens `/?asset=ID`, the page's test hook
starting the asset through hls.js (with --dash, also through dash.js) as soon as the page
defines it; the figure is `performance.now()` at the first `playing` event, i.e.
milliseconds since navigation start. One warm-up run per server and asset is not counted;
then the runs alternate servers. With --rtt MS, Chromium emulates a network with that
round-trip time (as DevTools does), for what a user on a real network sees: each request
in the start-up chain then costs a round trip. With --warm, the same runs are repeated in
one browser context per server that is kept open (a returning visitor: hls.js and the page
from the HTTP cache, V8's code cache warm; immutable segments cached too), reported as
separate rows ("warm").

Reported per asset and server: median, p90, min and max of the runs, and sori's median
relative to nginx's. Targets (issue 4): within 10% of nginx, under 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the real-client test helpers
from real_clients import (  # noqa: E402
    ASSET_IDS,
    SPEECH,
    HttpClient,
    free_port,
    local_env,
    make_speech,
    make_video,
    nginx,
    package_all,
    serve,
)

from origin import pages  # noqa: E402

DRIVER = Path(__file__).resolve().parent / "startup.mjs"
CHROMIUM = Path(os.environ.get("SORI_TEST_CHROMIUM", "/usr/bin/chromium"))
RATIO_TARGET = 1.10
MS_TARGET = 300.0

STATIC_HTTP = """\
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    types {{
        text/html html;
        text/javascript js;
        text/css css;
        image/svg+xml svg;
        application/json json;
        application/vnd.apple.mpegurl m3u8;
        application/dash+xml mpd;
        video/mp4 mp4;
        audio/mp4 m4a;
        video/iso.segment m4s;
        text/vtt vtt;
        image/jpeg jpg;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location = / {{ root {static}; try_files /index.html =404; }}
        location /player/ {{ root {static}; }}
        location /vendor/ {{ root {static}; }}
        location = /v1/assets {{ alias {static}/v1/assets.json; }}
        location /v1/assets/ {{ root {static}; default_type application/json; }}
        location /assets/ {{ alias {store}/; }}
    }}
"""


def snapshot(origin_base: str, static: Path, asset_ids: list[str]) -> None:
    """What the origin serves for the page, written to `static` at the same paths."""
    paths = {"/": "index.html", "/v1/assets": "v1/assets.json"}
    paths.update({f"/player/{n}": f"player/{n}" for n in pages.PAGE_FILES})
    paths.update({f"/vendor/{n}": f"vendor/{n}" for n in pages.VENDOR_FILES})
    paths.update({f"/v1/assets/{i}": f"v1/assets/{i}" for i in asset_ids})
    client = HttpClient(origin_base)
    for url, rel in paths.items():
        res = client.get(url)
        if res.status != 200:
            raise SystemExit(f"bench: GET {url} from the origin answered {res.status}")
        out = static / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(res.body)
    client.close()


def schedule(servers: dict[str, str], assets: list[str], runs: int,
             engines: list[bool], warm: bool = False) -> list[dict[str, Any]]:
    plan: list[dict[str, Any]] = []
    names = list(servers)
    for cached in ([False, True] if warm else [False]):
        for dash in engines:
            for asset in assets:
                for name in names:
                    plan.append({"server": name, "base": servers[name], "asset": asset,
                                 "dash": dash, "warmup": True, "warm": cached})
        for i in range(runs):
            for dash in engines:
                for asset in assets:
                    for name in (names if i % 2 == 0 else names[::-1]):
                        plan.append({"server": name, "base": servers[name], "asset": asset,
                                     "dash": dash, "warmup": False, "warm": cached})
    return plan


def drive(plan: list[dict[str, Any]], rtt: float = 0.0,
          settle: int = 1000) -> list[dict[str, Any]]:
    scenario = {"chromium": str(CHROMIUM), "runs": plan, "timeout": 15000, "rtt": rtt,
                "settle": settle}
    proc = subprocess.run(["node", str(DRIVER)], input=json.dumps(scenario), text=True,
                          capture_output=True, timeout=60 + (20 + settle / 1000) * len(plan),
                          cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench: startup.mjs exited {proc.returncode}\n{proc.stderr[-3000:]}")
    runs: list[dict[str, Any]] = json.loads(lines[-1])["runs"]
    return runs


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]  # nearest rank


def summarise(results: list[dict[str, Any]], kinds: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[str, bool, bool, str], list[dict[str, Any]]] = {}
    for r in results:
        if not r["warmup"]:
            groups.setdefault((r["asset"], r["dash"], r.get("warm", False), r["server"]),
                              []).append(r)
    for (asset, dash, warm, server), runs in groups.items():
        times = [r["ms"] for r in runs if r["ms"] is not None and not r["error"]]
        rows.append({"asset": asset, "kind": kinds[asset], "engine": ("dash.js" if dash else
                     "hls.js") + (" warm" if warm else ""), "server": server, "runs": len(runs), "ok": len(times),
                     "median_ms": statistics.median(times) if times else None,
                     "p90_ms": p90(times) if times else None,
                     "min_ms": min(times) if times else None,
                     "max_ms": max(times) if times else None,
                     "errors": sorted({r["error"] for r in runs if r["error"]})})
    for row in rows:
        if row["server"] != "sori":
            continue
        base = next(r for r in rows if r["server"] == "nginx" and r["asset"] == row["asset"]
                    and r["engine"] == row["engine"])
        if row["median_ms"] is not None and base["median_ms"]:
            row["vs_nginx"] = row["median_ms"] / base["median_ms"]
            row["pass"] = row["vs_nginx"] <= RATIO_TARGET and row["median_ms"] < MS_TARGET
    return rows


STAGES = (("page", "/"), ("js", "/player/"), ("hls.js", "/vendor/"), ("library", "/v1/assets"),
          ("master", "master.m3u8"), ("playlist", "index.m3u8"), ("init", "init.mp4"),
          ("segment", ".m4s"))


def _stage(path: str) -> str | None:
    for name, marker in STAGES:
        if (path == marker if marker == "/" else
                path.startswith(marker) if marker.startswith("/") else path.endswith(marker)):
            return name
    return None


def stages(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per asset, engine and server: median (over the counted runs) of when the first
    fetch of each stage started and finished, in ms since navigation start."""
    groups: dict[tuple[str, bool, bool, str], list[dict[str, Any]]] = {}
    for r in results:
        if not r["warmup"] and r["ms"] is not None and isinstance(r.get("resources"), list):
            groups.setdefault((r["asset"], r["dash"], r.get("warm", False), r["server"]),
                              []).append(r)
    out = []
    for (asset, dash, warm, server), runs in groups.items():
        row: dict[str, Any] = {"asset": asset, "engine": ("dash.js" if dash else "hls.js")
                               + (" warm" if warm else ""),
                               "server": server, "playing": statistics.median(
                                   r["ms"] for r in runs)}
        for name, _marker in STAGES:
            firsts = []
            for r in runs:
                hits = [(s, e) for p, s, e in r["resources"] if _stage(p) == name]
                if hits:
                    firsts.append(min(hits))
            if firsts:
                row[name] = (statistics.median(s for s, _ in firsts),
                             statistics.median(e for _, e in firsts))
        out.append(row)
    return out


def print_stages(rows: list[dict[str, Any]]) -> None:
    names = [n for n, _ in STAGES]
    print("\nwhen the first fetch of each stage started-ended (median ms since navigation):")
    print(f"{'asset':<8} {'engine':<12} {'server':<6} " + " ".join(f"{n:>11}" for n in names)
          + f" {'playing':>8}")
    for r in sorted(rows, key=lambda r: (r["engine"], r["asset"], r["server"])):
        cells = [f"{r[n][0]:>5.0f}-{r[n][1]:<5.0f}" if n in r else f"{'-':>11}" for n in names]
        print(f"{r['asset']:<8} {r['engine']:<12} {r['server']:<6} " + " ".join(cells)
              + f" {r['playing']:>8.0f}")


def print_table(rows: list[dict[str, Any]]) -> None:
    def ms(v: float | None) -> str:
        return f"{v:8.0f}" if v is not None else f"{'-':>8}"

    print(f"{'asset':<8} {'kind':<6} {'engine':<12} {'server':<6} {'runs':>5} {'median':>8} "
          f"{'p90':>8} {'min':>8} {'max':>8} {'vs nginx':>9}  target (<=1.10x, <300 ms)")
    for r in sorted(rows, key=lambda r: (r["engine"], r["kind"], r["server"] != "nginx")):
        ratio = f"{r['vs_nginx']:8.2f}x" if "vs_nginx" in r else f"{'':>9}"
        verdict = ("  pass" if r["pass"] else "  MISS") if "pass" in r else ""
        print(f"{r['asset']:<8} {r['kind']:<6} {r['engine']:<12} {r['server']:<6} "
              f"{r['ok']:>2}/{r['runs']:<2} {ms(r['median_ms'])} {ms(r['p90_ms'])} "
              f"{ms(r['min_ms'])} {ms(r['max_ms'])} {ratio}{verdict}")
        for e in r["errors"]:
            print(f"    error: {e[:200]}")
    print("(milliseconds from navigation start to the first `playing` event; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-video", action="store_true", help="only the audio asset")
    ap.add_argument("--dash", action="store_true", help="also measure dash.js")
    ap.add_argument("--rtt", type=float, default=0.0,
                    help="emulate a network with this round-trip time in ms (Chromium's "
                    "network emulation); 0 = loopback as it is")
    ap.add_argument("--settle", type=int, default=1000, metavar="MS",
                    help="let each new browser window settle this long before the page is "
                    "opened (default 1000; 0 = navigate at once, while the window's own UI "
                    "is still loading)")
    ap.add_argument("--warm", action="store_true",
                    help="also measure returning visits (one kept browser context per server)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    for tool in ("node", "ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is required")
    if not CHROMIUM.exists():
        raise SystemExit(f"bench: {CHROMIUM} is required (apt-get install chromium)")

    work = Path(tempfile.mkdtemp(prefix="sori-startup-"))
    try:
        sources = {"audio": make_speech(work / "speech.wav", SPEECH, minimum=14.0)}
        if not args.no_video:
            sources["video"] = make_video(work / "clip.mp4", seconds=10.0, size="1280x720")
        store = work / "store"
        t0 = time.monotonic()
        package_all(local_env(store), sources)
        print(f"packaged {', '.join(ASSET_IDS[k] for k in sources)} in "
              f"{time.monotonic() - t0:.1f} s", file=sys.stderr)
        asset_ids = [ASSET_IDS[k] for k in sources]
        kinds = {ASSET_IDS[k]: k for k in sources}
        with serve(local_env(store), work / "serve.log") as origin:
            snapshot(origin.base, work / "static", asset_ids)
            port = free_port()
            block = STATIC_HTTP.format(port=port, static=work / "static", store=store)
            with nginx(work / "nginx", block, port, workers="auto") as nginx_base:
                servers = {"nginx": nginx_base, "sori": origin.base}
                engines = [False, True] if args.dash else [False]
                plan = schedule(servers, asset_ids, args.runs, engines, args.warm)
                print(f"{len(plan)} page loads ...", file=sys.stderr)
                results = drive(plan, args.rtt, args.settle)
        rows = summarise(results, kinds)
        detail = stages(results)
        if args.json:
            print(json.dumps({"rows": rows, "stages": detail}, indent=2))
        else:
            if args.rtt:
                print(f"Chromium emulating a {args.rtt:.0f} ms round-trip time")
            print(f"each new browser window settled {args.settle} ms before the page was "
                  "opened (--settle)")
            print_table(rows)
            print_stages(detail)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
