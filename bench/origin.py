"""Origin throughput: sori (local store, S3 store) against nginx serving the same files.

    .venv/bin/python -m bench.origin [--duration 10] [--connections 64] [--workers 1,2]
                                     [--soak 60] [--access-log] [--signed] [--analytics]
                                     [--analytics-only] [--json]

One packaged hour of speech (bench/speech.py, packaged once by `sori package` into
bench/out/store_60min/) is served by, in the same run:

- nginx (`worker_processes auto`, sendfile, open_file_cache, access_log off) with the
  store directory as `/assets/` and the same Cache-Control, CORS and content types;
- `sori serve` on the local store, as users start it (SORI_STORAGE_ROOT,
  SORI_ORIGIN_WORKERS, SORI_ORIGIN_ACCESS_LOG=false unless --access-log);
- `sori serve` on the S3 store: the same objects copied into a bucket of a
  `moto_server` started for the run, the origin's cache warmed by one wrk pass first.

Load: `wrk -t2 -cN -dS --latency` with bench/segments.lua cycling through every media
segment of every rendition (read from the HLS playlists, shuffled). Each target gets a
short warm-up pass, then the measured run. Reported: requests/s, MB/s, p50/p99 latency,
errors (socket errors + HTTP >= 400), peak RSS of the server's process tree, and each
figure relative to nginx. Targets (issue): sori >= 0.5x nginx requests/s, p99 < 50 ms,
zero errors; with --soak S, sori-local runs under load for S seconds while its RSS is
sampled every second, to show that memory stays flat.

With --signed, the cost of signed URLs on the hot path (issue 11: at most 10% fewer
requests/s): the same segments served from a private copy of the asset (hard links,
its record marked private) through signed URLs, 64 users with a token each, against
the same requests unsigned on the public asset; alternated (unsigned, signed, unsigned,
signed) per worker count so that drift on a shared machine hits both alike.

With --analytics, the cost of listening analytics (issue 13: at most 10% fewer
requests/s): the same segments from the same store with `[analytics] enabled` false and
true (SQLite in the run's directory), both up at once and loaded in turns of
ANALYTICS_SLICE seconds (off, on, on, off, ...: a shared 2-core VM moves whole runs by
+-15%, and turns spread that drift over both); the hits the writer took, wrote and
dropped; and the CPU seconds the serving processes and the writer processes used, per
request.
--analytics-only skips every other target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import speech
from bench.measure import MB, TreeSampler, cmdline, tree_cpu
from bench.package_audio import clean_env, sori_command
from bench.servers import (
    NGINX,
    Server,
    copy_to_s3,
    free_port,
    s3_env,
    start_moto,
    start_nginx,
    start_sori,
    stop,
)
from origin.observe import metrics_share
from origin.observe.hits import COALESCE

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
LUA = HERE / "segments.lua"
ASSET_ID = "speech60"
PRIVATE_ID = "speech60p"
SIGNING_KEYS = {"bench": "a-benchmark-signing-secret-0001"}
SIGNED_USERS = 64
SIGNED_TARGET = 0.90
ANALYTICS_TARGET = 0.90
ANALYTICS_TURNS = 8  # turns of each (off, on) at once
ANALYTICS_SLICE = 5.0  # seconds of load a turn
DRAIN_WAIT = 120.0  # seconds the analytics queue may take to drain after a run
RPS_TARGET = 0.5
P99_TARGET_MS = 50.0


# --- the packaged store ------------------------------------------------------------------

def packaged_store(minutes: float = 60.0) -> Path:
    """bench/out/store_{minutes}min holding one asset packaged by `sori package`."""
    label = f"{minutes:g}".replace(".", "_")
    store = speech.OUT / f"store_{label}min"
    if (store / ASSET_ID / "asset.json").exists():
        return store
    src = speech.speech_wav(minutes)
    print(f"packaging {src.name} into {store} (once; cached for later runs)", file=sys.stderr)
    tmp = store.with_name(store.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([*sori_command(), "package", str(src), "--id", ASSET_ID],
                   env=clean_env(SORI_STORAGE_ROOT=str(tmp)), cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    shutil.rmtree(store, ignore_errors=True)
    tmp.replace(store)
    return store


def segment_paths(store: Path, asset_id: str = ASSET_ID) -> list[str]:
    """URL paths of every media segment of every rendition, found the way a player finds
    them (multivariant playlist → media playlists), shuffled with a fixed seed."""
    base = store / asset_id
    urls = []
    for line in (base / "master.m3u8").read_text().splitlines():
        uri = _uri(line)
        if uri is None or not uri.endswith(".m3u8"):
            continue
        media = base / uri
        rdir = str(Path(uri).parent)
        for seg in media.read_text().splitlines():
            if seg and not seg.startswith("#") and seg.endswith(".m4s"):
                urls.append(f"/assets/{asset_id}/{rdir}/{seg}")
    random.Random(1).shuffle(urls)
    return urls


def _uri(line: str) -> str | None:
    if line.startswith("#"):
        m = re.search(r'URI="([^"]+)"', line)
        return m.group(1) if m else None
    return line.strip() or None


def private_copy(store: Path, work: Path) -> Path:
    """A store holding PRIVATE_ID: the asset's files hard-linked (no copy of the bytes)
    beside a record of its own that says private."""
    root = speech.OUT / "store_signed"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(store / ASSET_ID, root / PRIVATE_ID, copy_function=os.link)
    record = root / PRIVATE_ID / "asset.json"
    rec = json.loads(record.read_text())
    record.unlink()  # a new inode: the public asset's record stays as it was
    record.write_text(json.dumps({**rec, "id": PRIVATE_ID, "access": "private"}))
    return root


def signed_paths(urls: list[str]) -> list[str]:
    """The same segments of the private copy, each through the signed URL of one of
    SIGNED_USERS users (round robin), as their players would request them."""
    from signing.tokens import mint

    expires = int(time.time()) + 24 * 3600
    tokens = [mint(SIGNING_KEYS, expires=expires, asset=PRIVATE_ID, user=f"u{i}")
              for i in range(SIGNED_USERS)]
    prefix = f"/assets/{ASSET_ID}/"
    return [f"/assets/{PRIVATE_ID}/~{tokens[i % SIGNED_USERS]}/{u[len(prefix):]}"
            for i, u in enumerate(urls)]


def signed_cost(store: Path, urls: list[str], work: Path, args: argparse.Namespace
                ) -> dict[str, Any]:
    private = private_copy(store, work)
    plain_file, signed_file = work / "urls.txt", work / "signed.txt"
    signed_file.write_text("\n".join(signed_paths(urls)) + "\n")
    out: dict[str, Any] = {"users": SIGNED_USERS, "runs": []}
    for w in args.workers:
        rps: dict[str, list[float]] = {"unsigned": [], "signed": []}
        for _round in range(2):
            for kind, root, file in (("unsigned", store, plain_file),
                                     ("signed", private, signed_file)):
                env = {"SORI_STORAGE_ROOT": str(root),
                       "SORI_SECURITY_SIGNING_KEYS": json.dumps(SIGNING_KEYS),
                       "SORI_SECURITY_TOKEN_FAILURES_PER_MINUTE": "0"}
                server = start_sori(f"sori-{kind} w{w}", free_port(), env, w,
                                    args.access_log, work)
                try:
                    r = measure_target(server, file, args.duration, args.connections,
                                       args.warm, w)
                finally:
                    stop(server.proc)
                if r["errors"]:
                    raise RuntimeError(f"{kind} w{w}: {r['error_detail']}")
                rps[kind].append(r["rps"])
        mean = {k: sum(v) / len(v) for k, v in rps.items()}
        ratio = mean["signed"] / mean["unsigned"]
        out["runs"].append({"workers": w, "rps": rps, "mean": mean, "ratio": ratio,
                            "pass": ratio >= SIGNED_TARGET})
    shutil.rmtree(private, ignore_errors=True)
    return out


# --- analytics on and off -------------------------------------------------------------------

def analytics_cost(store: Path, urls_file: Path, work: Path, args: argparse.Namespace
                   ) -> dict[str, Any]:
    """Both servers up at once, loaded in turns of ANALYTICS_SLICE seconds (off, on, on,
    off, ...): the machine's drift, which on a shared VM moves whole runs by +-15%, then
    falls on both alike. After each turn both rest until the analytics server has written
    what its turn produced, so none of that work lands in the other's turn."""
    out: dict[str, Any] = {"runs": []}
    for w in args.workers:
        servers: dict[str, Server] = {}
        try:
            for kind in ("off", "on"):
                env = {"SORI_STORAGE_ROOT": str(store),
                       "SORI_ANALYTICS_ENABLED": "true" if kind == "on" else "false",
                       "SORI_ANALYTICS_DATABASE": str(work / f"analytics-w{w}.sqlite3")}
                servers[kind] = start_sori(f"sori-analytics-{kind} w{w}", free_port(), env, w,
                                           args.access_log, work)
            for server in servers.values():
                warm_cache(server, urls_file, args.connections, args.warm, w, 180.0)
            out["runs"].append(_turns(servers, urls_file, args, w))
        finally:
            for server in servers.values():
                stop(server.proc)
    return out


def _turns(servers: dict[str, Server], urls_file: Path, args: argparse.Namespace,
           workers: int) -> dict[str, Any]:
    rps: dict[str, list[float]] = {"off": [], "on": []}
    requests = {"off": 0, "on": 0}
    seconds = {"off": 0.0, "on": 0.0}
    cpu0 = {k: tree_cpu(s.proc.pid, _role) for k, s in servers.items()}
    before = analytics_counts(servers["on"], workers)
    for turn in range(ANALYTICS_TURNS):
        for kind in (("off", "on") if turn % 2 == 0 else ("on", "off")):
            r = run_wrk(servers[kind].base_url, urls_file, ANALYTICS_SLICE, args.connections)
            if r["errors"]:
                raise RuntimeError(f"analytics {kind} w{workers}: {r['error_detail']}")
            rps[kind].append(r["rps"])
            requests[kind] += r["requests"]
            seconds[kind] += r["requests"] / r["rps"]
            _rest(servers["on"], workers)
    after = analytics_counts(servers["on"], workers)
    cpu: dict[str, dict[str, float]] = {}
    for kind, server in servers.items():
        used: dict[str, float] = {}
        for pid, (role, now) in tree_cpu(server.proc.pid, _role).items():
            used[role] = used.get(role, 0.0) + now - cpu0[kind].get(pid, (role, 0.0))[1]
        cpu[kind] = used
    rate = {k: requests[k] / seconds[k] for k in requests}
    ratio = rate["on"] / rate["off"]
    us_per_request = {k: 1e6 * sum(cpu[k].values()) / requests[k] for k in requests}
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    events = {"offered_per_s": (delta.get("accepted", 0.0) + delta.get("dropped", 0.0))
              / seconds["on"],
              "written": delta.get("written", 0.0), "dropped": delta.get("dropped", 0.0)}
    return {"workers": workers, "rps": rps, "mean": rate, "ratio": ratio, "cpu_s": cpu,
            "cpu_us_per_request": us_per_request, "writer": events,
            "pass": ratio >= ANALYTICS_TARGET}


def _rest(on: Server, workers: int) -> None:
    """Until the analytics server has coalesced, sent and written its turn's hits (the
    same pause after either turn)."""
    time.sleep(COALESCE + 0.2)
    t0 = time.monotonic()
    while analytics_counts(on, workers).get("queue", 0.0) > 0:
        if time.monotonic() - t0 > DRAIN_WAIT:
            raise RuntimeError("the analytics queue did not drain")
        time.sleep(0.1)


def _role(pid: int) -> str:
    """What a process of sori's tree does: the analytics writer, or serving."""
    return "writer" if "analytics.writer.process" in cmdline(pid) else "serving"


def analytics_counts(server: Server, workers: int) -> dict[str, float]:
    """sori_analytics_events_total by result and the queue, summed over the workers (as of
    up to a second ago for the others: with several, this waits that long first)."""
    if workers > 1:
        time.sleep(metrics_share.PUBLISH_EVERY + 0.1)
    try:
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for m in re.finditer(r'^sori_analytics_events_total\{(.*?)\} ([0-9.e+]+)$', text, re.M):
        result = re.search(r'result="(\w+)"', m.group(1))
        if result:
            out[result.group(1)] = out.get(result.group(1), 0.0) + float(m.group(2))
    for m in re.finditer(r'^sori_analytics_queue_events(?:\{.*?\})? ([0-9.e+]+)$', text, re.M):
        out["queue"] = out.get("queue", 0.0) + float(m.group(1))
    return out


# --- load ------------------------------------------------------------------------------------

def run_wrk(base_url: str, urls_file: Path, duration: float, connections: int,
            threads: int = 2) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency",
           "--timeout", "5s", "-s", str(LUA), base_url, "--", str(urls_file)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    r: dict[str, Any] = json.loads(line[5:])
    seconds = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"]
    return {
        "requests": r["requests"],
        "rps": r["requests"] / seconds,
        "mb_s": r["bytes"] / MB / seconds,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "errors": errors,
        "error_detail": {k: r[k] for k in ("connect", "read", "write", "timeout", "status")},
        "text": out.stdout,
    }


def measure_target(server: Server, urls_file: Path, duration: float, connections: int,
                   warm: float, workers: int = 1, max_warm: float = 180.0) -> dict[str, Any]:
    if server.name == "nginx":
        warm_info = {"requests": run_wrk(server.base_url, urls_file, warm, connections)[
            "requests"] if warm > 0 else 0, "seconds": warm}
    else:
        warm_info = warm_cache(server, urls_file, connections, warm, workers, max_warm)
    before = worker_caches(server, workers)
    with TreeSampler(server.proc.pid, interval=0.5) as sampler:
        result = run_wrk(server.base_url, urls_file, duration, connections)
    after = worker_caches(server, workers)
    result["name"] = server.name
    result["rss_peak_mb"] = sampler.peak / MB
    result["warm"] = warm_info
    if after:
        result["cache"] = {"workers_seen": len(after),
                           "misses_during_run": sum(m for _h, m, _b in after)
                           - sum(m for _h, m, _b in before),
                           "hits_during_run": sum(h for h, _m, _b in after)
                           - sum(h for h, _m, _b in before),
                           "mb_held": [round(b / MB) for _h, _m, b in after]}
    return result


_CACHE_SERIES = ("sori_cache_hits_total", "sori_cache_misses_total", "sori_cache_bytes")


def worker_caches(server: Server, workers: int) -> list[tuple[float, ...]]:
    """(cache hits, cache misses, cache bytes) of every worker, from one /metrics answer:
    with several workers, whichever answers reports all of them, each sample labelled
    `worker` (origin/observe/metrics_share.py), the others' as of up to a second ago, so this
    waits that long first."""
    if workers > 1:
        time.sleep(metrics_share.PUBLISH_EVERY + 0.1)
    try:
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return []
    per: dict[str, list[float]] = {}
    for i, name in enumerate(_CACHE_SERIES):
        for m in re.finditer(rf"^{name}(?:{{(.*?)}})? ([0-9.e+]+)$", text, re.M):
            worker = re.search(r'worker="([^"]*)"', m.group(1) or "")
            per.setdefault(worker.group(1) if worker else "-", [0.0] * 3)[i] = float(m.group(2))
    return sorted(tuple(v) for v in per.values())


def warm_cache(server: Server, urls_file: Path, connections: int, round_s: float,
               workers: int, max_s: float) -> dict[str, Any]:
    """Load the server in rounds until a round adds (almost) no cache miss in any worker,
    i.e. every worker holds every segment: the "warm cache" state."""
    t0 = time.monotonic()
    requests = rounds = 0
    prev = sum(m for _h, m, _b in worker_caches(server, workers))
    round_s = max(round_s, 1.0)
    while True:
        r = run_wrk(server.base_url, urls_file, round_s, connections)
        requests += r["requests"]
        rounds += 1
        cur = sum(m for _h, m, _b in worker_caches(server, workers))
        new = cur - prev
        prev = cur
        if new <= 0.001 * r["requests"] or time.monotonic() - t0 > max_s:
            return {"requests": requests, "rounds": rounds,
                    "seconds": round(time.monotonic() - t0, 1), "misses_last_round": new}


def soak(server: Server, urls_file: Path, seconds: float, connections: int,
         warm: float, workers: int) -> dict[str, Any]:
    before, _ = _tree_now(server)
    warm_cache(server, urls_file, connections, warm, workers, 180.0)
    after_warm, _ = _tree_now(server)
    with TreeSampler(server.proc.pid, interval=1.0) as sampler:
        result = run_wrk(server.base_url, urls_file, seconds, connections)
    samples = [b for _t, b in sampler.samples]
    first = samples[: max(1, len(samples) // 6)]
    last = samples[-max(1, len(samples) // 6):]
    start_avg, end_avg = sum(first) / len(first), sum(last) / len(last)
    growth = (end_avg - start_avg) / start_avg if start_avg else 0.0
    return {
        "seconds": seconds,
        "rss_idle_mb": before / MB,
        "rss_after_warm_mb": after_warm / MB,
        "rss_start_mb": samples[0] / MB if samples else 0.0,
        "rss_peak_mb": max(samples) / MB if samples else 0.0,
        "rss_end_mb": samples[-1] / MB if samples else 0.0,
        "growth_first_to_last_sixth": growth,
        "flat": abs(growth) < 0.05,
        "rss_series_mb": [round(b / MB, 1) for b in samples],
        "rps": result["rps"],
        "p99_ms": result["p99_ms"],
        "errors": result["errors"],
    }


def _tree_now(server: Server) -> tuple[int, int]:
    from bench.measure import tree_rss

    total, names = tree_rss(server.proc.pid)
    return total, sum(names.values())


def header_check(nginx: Server, sori: Server, path: str) -> dict[str, Any]:
    """The response headers of both for one segment, and the names only one of them sends."""
    def heads(base: str) -> dict[str, str]:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return {k.lower(): v for k, v in r.headers.items()}
    a, b = heads(nginx.base_url), heads(sori.base_url)
    skip = {"server", "date", "connection", "keep-alive", "x-cache"}
    return {"nginx": a, "sori": b,
            "only_sori": sorted(set(b) - set(a) - skip),
            "only_nginx": sorted(set(a) - set(b) - skip)}


# --- main ------------------------------------------------------------------------------------

def bench(args: argparse.Namespace) -> dict[str, Any]:
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            raise SystemExit("bench: wrk is required (apt-get install wrk)")
    if not Path(NGINX).exists():
        raise SystemExit(f"bench: {NGINX} is required (apt-get install nginx-light)")
    store = packaged_store(args.minutes)
    urls = segment_paths(store)
    work = Path(tempfile.mkdtemp(prefix="sori-bench-origin-"))
    urls_file = work / "urls.txt"
    urls_file.write_text("\n".join(urls) + "\n")
    sizes = [os.path.getsize(store / u[len("/assets/"):]) for u in urls]
    info: dict[str, Any] = {
        "benchmark": "origin", "store": str(store), "segments": len(urls),
        "segment_kb_mean": sum(sizes) / len(sizes) / 1024, "segments_mb": sum(sizes) / MB,
        "duration_s": args.duration, "connections": args.connections, "wrk_threads": 2,
        "access_log": args.access_log, "cpu_count": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    rows: list[dict[str, Any]] = []
    moto = None
    if args.analytics_only:
        try:
            info["analytics"] = analytics_cost(store, urls_file, work, args)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        info["load_after"] = os.getloadavg()
        info["results"] = []
        return info
    try:
        nginx = start_nginx(store, free_port(), work)
        try:
            rows.append(measure_target(nginx, urls_file, args.duration, args.connections,
                                       args.warm))
            probe = None
            for w in args.workers:
                local = start_sori(f"sori-local w{w}", free_port(),
                                   {"SORI_STORAGE_ROOT": str(store)}, w, args.access_log, work)
                try:
                    if probe is None:
                        probe = header_check(nginx, local, urls[0])
                    rows.append(measure_target(local, urls_file, args.duration,
                                               args.connections, args.warm, w))
                finally:
                    stop(local.proc)
            info["headers"] = probe
        finally:
            stop(nginx.proc)
        if not args.no_s3:
            moto, endpoint = start_moto(work)
            t0 = time.monotonic()
            count = copy_to_s3(store, endpoint, "media")
            info["s3_upload"] = {"objects": count, "seconds": time.monotonic() - t0}
            for w in args.workers:
                s3 = start_sori(f"sori-s3 w{w}", free_port(), s3_env(endpoint, "media"), w,
                                args.access_log, work)
                try:
                    rows.append(measure_target(s3, urls_file, args.duration, args.connections,
                                               args.warm, w))
                finally:
                    stop(s3.proc)
        if args.signed:
            info["signed"] = signed_cost(store, urls, work, args)
        if args.analytics:
            info["analytics"] = analytics_cost(store, urls_file, work, args)
        if args.soak:
            w = max(args.workers)
            local = start_sori(f"sori-local w{w} soak", free_port(),
                               {"SORI_STORAGE_ROOT": str(store)}, w, args.access_log, work)
            try:
                info["soak"] = soak(local, urls_file, args.soak, args.connections, args.warm,
                                    w)
                info["soak"]["workers"] = w
            finally:
                stop(local.proc)
    finally:
        if moto is not None:
            stop(moto)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    info["load_after"] = os.getloadavg()
    base = rows[0]
    for r in rows:
        r["rps_vs_nginx"] = r["rps"] / base["rps"] if base["rps"] else 0.0
        r.pop("text", None)
        if r["name"] != "nginx":
            r["pass"] = {"rps": r["rps_vs_nginx"] >= RPS_TARGET,
                         "p99": r["p99_ms"] < P99_TARGET_MS, "errors": r["errors"] == 0}
    info["results"] = rows
    return info


def print_report(r: dict[str, Any]) -> None:
    print(f"store: {r['store']}: {r['segments']} media segments over 3 renditions, mean "
          f"{r['segment_kb_mean']:.0f} KB, {r['segments_mb']:.0f} MB in all")
    print(f"wrk -t{r['wrk_threads']} -c{r['connections']} -d{r['duration_s']:g}s, "
          f"{r['cpu_count']} cores shared by server and wrk; sori access log "
          f"{'on' if r['access_log'] else 'off'}; load average before "
          f"{r['load_before'][0]:.2f}, after {r['load_after'][0]:.2f}")
    if "s3_upload" in r:
        u = r["s3_upload"]
        print(f"S3: moto_server, {u['objects']} objects uploaded in {u['seconds']:.1f} s")
    head = (f"{'target':<16} {'req/s':>9} {'MB/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'errors':>6} {'RSS MB':>7} {'vs nginx':>8}  targets (>=0.5x, p99<50ms, 0 err)")
    if r["results"]:
        print(head)
        print("-" * len(head))
    for row in r["results"]:
        verdict = ""
        if "pass" in row:
            p = row["pass"]
            verdict = "  " + " ".join(
                f"{k}:{'PASS' if v else 'MISS'}" for k, v in p.items())
        print(f"{row['name']:<16} {row['rps']:>9.0f} {row['mb_s']:>8.1f} {row['p50_ms']:>7.2f} "
              f"{row['p99_ms']:>7.2f} {row['errors']:>6} {row['rss_peak_mb']:>7.0f} "
              f"{row['rps_vs_nginx']:>7.2f}x{verdict}")
    for row in r["results"]:
        c, w = row.get("cache"), row["warm"]
        if c:
            print(f"  {row['name']}: warm-up {w['requests']} requests in {w['rounds']} rounds "
                  f"({w['seconds']:.0f} s); during the run {c['hits_during_run']:.0f} cache "
                  f"hits, {c['misses_during_run']:.0f} misses over {c['workers_seen']} "
                  f"worker(s) holding {c['mb_held']} MB")
        if row["errors"]:
            print(f"  {row['name']} errors: {row['error_detail']}")
    hd = r.get("headers")
    if hd:
        print(f"headers only sori sends: {', '.join(hd['only_sori']) or '-'}; "
              f"only nginx sends: {', '.join(hd['only_nginx']) or '-'}")
    sg = r.get("signed")
    if sg:
        for run in sg["runs"]:
            m = run["mean"]
            print(f"signed URLs, w{run['workers']}: {m['signed']:.0f} req/s signed "
                  f"({sg['users']} users' tokens) vs {m['unsigned']:.0f} unsigned (mean of "
                  f"{len(run['rps']['signed'])} alternated runs each): {run['ratio']:.3f}x "
                  f"-> {'PASS' if run['pass'] else 'MISS'} (target >= {SIGNED_TARGET}x)")
    an = r.get("analytics")
    if an:
        for run in an["runs"]:
            m = run["mean"]
            print(f"analytics, w{run['workers']}: {m['on']:.0f} req/s on vs {m['off']:.0f} off "
                  f"over {len(run['rps']['on'])} turns of {ANALYTICS_SLICE:g} s each, in "
                  f"alternation (on: {', '.join(f'{x:.0f}' for x in run['rps']['on'])}; off: "
                  f"{', '.join(f'{x:.0f}' for x in run['rps']['off'])}): {run['ratio']:.3f}x "
                  f"-> {'PASS' if run['pass'] else 'MISS'} (target >= {ANALYTICS_TARGET}x)")
            c, us = run["cpu_s"], run["cpu_us_per_request"]
            print(f"  CPU: off serving {c['off'].get('serving', 0.0):.1f} s = {us['off']:.1f} "
                  f"us/request; on serving {c['on'].get('serving', 0.0):.1f} s + writer "
                  f"{c['on'].get('writer', 0.0):.2f} s = {us['on']:.1f} us/request "
                  f"({us['off'] / us['on']:.3f}x)")
            ev = run["writer"]
            print(f"  writer: {ev['offered_per_s']:.0f} hits/s offered during the turns, "
                  f"{ev['written']:.0f} written, {ev['dropped']:.0f} dropped")
    s = r.get("soak")
    if s:
        print(f"soak: sori-local w{s['workers']} for {s['seconds']:g} s: RSS (tree) idle "
              f"{s['rss_idle_mb']:.0f} MB, after warm-up {s['rss_after_warm_mb']:.0f} MB; "
              f"during: start {s['rss_start_mb']:.0f}, peak {s['rss_peak_mb']:.0f}, end "
              f"{s['rss_end_mb']:.0f} MB; first-to-last-sixth growth "
              f"{100 * s['growth_first_to_last_sixth']:+.1f}% -> "
              f"{'FLAT (PASS)' if s['flat'] else 'GROWING (MISS)'}; "
              f"{s['rps']:.0f} req/s, p99 {s['p99_ms']:.1f} ms, {s['errors']} errors")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.origin", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", default="1,2",
                    help="comma-separated sori worker counts to try (default 1,2)")
    ap.add_argument("--warm", type=float, default=3.0,
                    help="seconds per warm-up round; sori is loaded in rounds until a round "
                         "adds no cache miss in any worker (nginx gets one round)")
    ap.add_argument("--soak", type=float, default=0.0,
                    help="also run sori-local under load this many seconds, sampling RSS")
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the packaged asset")
    ap.add_argument("--access-log", action="store_true", help="keep sori's access log on")
    ap.add_argument("--no-s3", action="store_true", help="skip the S3 store runs")
    ap.add_argument("--signed", action="store_true",
                    help="also measure signed URLs of a private copy against unsigned ones")
    ap.add_argument("--analytics", action="store_true",
                    help="also measure listening analytics on against off")
    ap.add_argument("--analytics-only", action="store_true",
                    help="measure only analytics on against off (no nginx, S3, ...)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    result = bench(args)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
