"""Live TTS streaming: time to first audio, latency, streams at once, listeners waiting.

    .venv/bin/python -m bench.live [--runs 5] [--parts ttfa,latency,streams,listeners]
                                   [--streams 10,12,14,16,20,30,40] [--listeners 5000]
                                   [--set SECTION.KEY=VALUE] [--trace] [--py-spy DIR]
                                   [--json] [--keep]

Every figure is printed beside its reference, measured in the same run, and the issue's
target and floor (bench/README.md, "Live", says what each row is and what was found):

1. time to first audio: a stream is created, a page of our own (hls.js, lowLatencyMode,
   startPosition 0; bench/live_driver.mjs) is opened in Debian's Chromium and waits for it;
   then a producer pushes espeak-ng speech, in real time (200 ms chunks at the pace of
   the audio) or in bursts (each sentence at 10x real time, then a pause). The figure is
   from the first audio byte the origin accepts (the stream's EXT-X-PROGRAM-DATE-TIME of
   media time 0) to the page's first `playing` event: with hls.js's default retry policy
   (as the player page has it) and with the page retrying an unusable playlist every
   50 ms. Reference: ffmpeg's own HLS muxer (bench/live_media.py) fed the same chunks at
   the same pace on its stdin, writing into a directory nginx serves, played by the same
   page (retrying every 50 ms until ffmpeg has written a playlist), from the first byte
   written to ffmpeg.
2. latency: 3 s into a real-time stream, the page opens at the live edge (startPosition
   -1; lowLatencyMode for sori; the reference keeps `--ref-sync` 1 s segments behind the
   edge) and samples, every 0.5 s for --latency-seconds, wall clock minus the program date
   time of the playhead (hls.js `playingDate`).
3. streams at once: K real-time streams on one origin (workers = 1), pushed from one
   process, each followed from another process by an LL-HLS client on one rendition with
   blocking reloads; a stream keeps cadence if, after its first second, no gap between
   successive new parts exceeds PART-TARGET + 0.25 s. Reported with the origin's CPU
   (its Python process and its ffmpeg encoders apart) and peak memory (the process and
   all its encoders, summed RSS and PSS). Reference: the number of live encoders (the
   origin's own ffmpeg command) that the machine's cores can run at real time, measured
   by encoding speech as fast as the encoder can.
4. listeners waiting: N keep-alive connections (bench/live_listeners.py, in several
   processes) on one stream of one origin (workers = 1). In each round, the moment a part
   lands they all ask for the part --listen-lead parts on with a blocking reload, so all
   are held when it lands; per round, from the first answer (the part landing) to each
   listener's answer. Reference: the same connections sending a plain GET of the same
   playlist all at once, to nginx (one worker) serving a copy of it, and to the origin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import live_media
from bench.live_load import TreeStats, last_part, vm_hwm
from bench.measure import MB, system_cpu
from bench.servers import NGINX, Server, free_port, launch, start_sori, stop

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "live_driver.mjs"
CHROMIUM = Path(os.environ.get("SORI_TEST_CHROMIUM", "/usr/bin/chromium"))
HLS_JS = ROOT / "player" / "node_modules" / "hls.js" / "dist" / "hls.min.js"
PY = sys.executable

TTFA_TARGET, TTFA_FLOOR = 1.0, 1.5
LATENCY_TARGET, LATENCY_FLOOR = 1.5, 2.0
STREAMS_TARGET, STREAMS_FLOOR = 30, 20
LISTENERS_TARGET, LISTEN_P99_TARGET = 5000, 0.100
CADENCE_SLACK = 0.25
PARTS = ("ttfa", "latency", "streams", "listeners")
ORIGIN_ENV: dict[str, str] = {}  # --set section.key=value, as SORI_SECTION_KEY
PROFILE: dict[str, Any] = {}  # --py-spy: {"exe", "dir"}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-int(q * 1000) * len(ordered) // 1000) - 1))]


def verdict(value: float | None, target: float, floor: float, higher: bool = False) -> str:
    if value is None or value != value:
        return "n/a"
    if higher:
        return "pass" if value >= target else ("short" if value >= floor else "FAIL")
    return "pass" if value <= target else ("short" if value <= floor else "FAIL")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes -----------------------------------------------------------------------------


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextlib.contextmanager
def origin(work: Path, name: str) -> Iterator[Server]:
    """`sori serve` on a fresh local store, one worker, no access log (plus --set)."""
    store = work / f"store-{name}"
    store.mkdir()
    tmp = work / f"tmp-{name}"  # the origin's spools: gone with the work directory even
    tmp.mkdir()                 # if the origin has to be killed
    env = {"SORI_STORAGE_BACKEND": "local", "SORI_STORAGE_ROOT": str(store), "TMPDIR": str(tmp),
           **ORIGIN_ENV}
    workers = int(env.pop("SORI_ORIGIN_WORKERS", "1"))  # --set origin.workers=N
    server = start_sori(f"sori-{name}", free_port(), env, workers=workers, access_log=False,
                        work=work)
    spy = None
    if PROFILE:
        PROFILE["dir"].mkdir(parents=True, exist_ok=True)
        out = PROFILE["dir"] / f"sori-{name}.txt"
        spy = subprocess.Popen([PROFILE["exe"], "record", "--pid", str(server.proc.pid),
                                "--rate", "250", "--format", "raw", "--nonblocking",
                                "--output", str(out)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        yield server
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            log(f"py-spy: {PROFILE['dir'] / f'sori-{name}.txt'}")
        stop(server.proc)


@contextlib.contextmanager
def nginx(work: Path) -> Iterator[tuple[Server, Path]]:
    """nginx (one worker) serving /vendor/hls.min.js and the reference's /live/ files."""
    prefix = work / "nginx"
    prefix.mkdir()
    root = live_media.nginx_root(work, HLS_JS)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(live_media.NGINX_CONF.format(user=user, workers=1, prefix=prefix,
                                                 port=port, root=root))
    server = launch("nginx", [NGINX, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
                    port, prefix / "stderr.log")
    try:
        yield server, root
    finally:
        stop(server.proc)


class Driver:
    """bench/live_driver.mjs: Chromium, one page per run, steered by JSON lines."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Driver:
        self.proc = await asyncio.create_subprocess_exec(
            "node", str(DRIVER), str(CHROMIUM), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, cwd=ROOT, start_new_session=True,
            limit=1 << 24)
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        with contextlib.suppress(Exception):
            self._send({"op": "quit"})
            await asyncio.wait_for(self.proc.wait(), 15)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            await self.proc.wait()
        if self.reader:
            self.reader.cancel()

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            rid = msg.get("id")
            if rid is not None:
                self.queues.setdefault(rid, asyncio.Queue()).put_nowait(msg)

    def _send(self, cmd: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())

    def open(self, rid: str, base: str, params: dict[str, Any], settle: int) -> None:
        self.queues[rid] = asyncio.Queue()
        self._send({"op": "open", "id": rid, "base": base, "settle": settle,
                    "params": {k: str(v) for k, v in params.items()}})

    async def wait(self, rid: str, events: set[str], timeout: float) -> dict[str, Any]:
        """The next report of `rid` among `events` (an "error" report ends the wait)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"event": "timeout", "error": f"no {'/'.join(sorted(events))} "
                        f"within {timeout:.0f} s"}
            try:
                msg = await asyncio.wait_for(self.queues[rid].get(), left)
            except TimeoutError:
                continue
            if msg.get("event") in events or msg.get("event") == "error":
                return msg

    async def close(self, rid: str) -> None:
        self._send({"op": "close", "id": rid})
        await self.wait(rid, {"closed"}, 15)
        self.queues.pop(rid, None)


# --- producers -------------------------------------------------------------------------


async def paced(plan: live_media.Schedule,
                sent: dict[str, float]) -> AsyncIterator[tuple[int, bytes]]:
    """(seq, chunk) of the schedule, each at its time; sent["first"]: the first one's."""
    t0 = time.time()
    for seq, (at, chunk) in enumerate(plan):
        delay = t0 + at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if seq == 0:
            sent["first"] = time.time()
        yield seq, chunk


async def push_origin(session: Any, base: str, sid: str, plan: live_media.Schedule,
                      sent: dict[str, float]) -> None:
    """Post the schedule's chunks to the origin (seq 0, 1, ...), at its times."""
    async for seq, chunk in paced(plan, sent):
        async with session.post(f"{base}/v1/live/{sid}/chunks", params={"seq": str(seq)},
                                data=chunk) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"chunk {seq} of {sid}: {r.status}")


async def push_ffmpeg(proc: asyncio.subprocess.Process, plan: live_media.Schedule,
                      sent: dict[str, float]) -> None:
    assert proc.stdin is not None
    async for _seq, chunk in paced(plan, sent):
        proc.stdin.write(chunk)
        await proc.stdin.drain()


async def create_stream(session: Any, base: str, sid: str) -> dict[str, Any]:
    async with session.post(f"{base}/v1/live", json={"id": sid, "format": live_media.FORMAT}) as r:
        body = await r.json()
        if r.status != 201:
            raise RuntimeError(f"POST /v1/live {sid}: {r.status} {body}")
        return body  # type: ignore[no-any-return]


async def end_stream(session: Any, base: str, sid: str) -> None:
    async with session.post(f"{base}/v1/live/{sid}/end") as r:
        await r.read()


async def asset(session: Any, base: str, sid: str) -> dict[str, Any]:
    async with session.get(f"{base}/v1/assets/{sid}") as r:
        return await r.json()  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def ffmpeg_ref(out_dir: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    out_dir.mkdir(parents=True)
    with open(out_dir.parent / f"{out_dir.name}.log", "wb") as errlog:
        proc = await asyncio.create_subprocess_exec(
            *live_media.ffmpeg_hls_args(out_dir), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=errlog)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def running(coro: Any) -> AsyncIterator[asyncio.Task[Any]]:
    """A task that is cancelled (and awaited) when the block ends."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


# --- 1 and 2: Chromium --------------------------------------------------------------------


@dataclass
class Ctx:
    drv: Driver
    session: Any
    sori: str
    ngx: str
    www: Path
    said: list[bytes]
    settle: int
    ref_sync: int
    trace: bool = False


def _relative(errors: list[str] | None, first: float) -> list[str]:
    """hls.js errors as the page lists them ("details ... @EPOCH_MS"), times made ms from
    the first byte."""
    out = []
    for e in errors or []:
        text, sep, at = e.rpartition(" @")
        out.append(f"{text} @{float(at) - first * 1000:.0f} ms" if sep and at.isdigit() else e)
    return out


def show_trace(ev: dict[str, Any], first: float) -> None:
    """--trace: the page's hls.js and <video> events, in ms from the first byte."""
    for t, name, what, extra in ev.get("trace") or []:
        print(f"    {t - first * 1000:8.0f} ms  {name:<18} {what} {extra}", file=sys.stderr)
    for t, name, size in ev.get("fetches") or []:
        print(f"    {t - first * 1000:8.0f} ms  fetch {name} "
              f"{'(from the HTTP cache)' if size == 0 else f'{size} bytes'}", file=sys.stderr)
    if ev.get("trace") is not None and ev.get("errors"):
        print(f"    hls.js errors: {ev['errors']}", file=sys.stderr)


async def ttfa_sori(ctx: Ctx, kind: str, rid: str, retry: bool = False) -> dict[str, Any]:
    sid = f"ttfa-{rid}"
    await create_stream(ctx.session, ctx.sori, sid)
    ctx.drv.open(rid, ctx.sori, {"src": f"/assets/{sid}/master.m3u8", "ll": 1, "start": 0,
                                 "ready": "levelLoading", "retry": int(retry),
                                 "trace": int(ctx.trace)}, ctx.settle)
    out: dict[str, Any] = {"server": "sori-retry" if retry else "sori", "kind": kind}
    try:
        ready = await ctx.drv.wait(rid, {"ready"}, 30)
        if ready["event"] != "ready":
            return {**out, "error": ready.get("error")}
        sent: dict[str, float] = {}
        plan = live_media.schedule(kind, ctx.said, 15.0)
        async with running(push_origin(ctx.session, ctx.sori, sid, plan, sent)) as pusher:
            ev = await ctx.drv.wait(rid, {"playing"}, 12)
            if pusher.done() and pusher.exception():
                return {**out, "error": str(pusher.exception())}
        await end_stream(ctx.session, ctx.sori, sid)
        rec = await asset(ctx.session, ctx.sori, sid)
        start = (rec.get("live") or {}).get("start")
        if ev["event"] != "playing" or start is None:
            return {**out, "error": ev.get("error") or "no start in the record",
                    "errors": ev.get("errors")}
        show_trace(ev, start)
        return {**out, "ttfa": ev["t"] / 1000 - start, "position": ev["currentTime"],
                "client_first": sent.get("first", 0) - start,
                "hls_errors": _relative(ev.get("errors"), start)}
    finally:
        await ctx.drv.close(rid)


async def ttfa_ffmpeg(ctx: Ctx, kind: str, rid: str) -> dict[str, Any]:
    out: dict[str, Any] = {"server": "ffmpeg+nginx", "kind": kind}
    async with ffmpeg_ref(ctx.www / "live" / rid) as proc:
        ctx.drv.open(rid, ctx.ngx, {"src": f"/live/{rid}/index.m3u8", "ll": 0, "start": 0,
                                    "retry": 1, "ready": "manifestLoading",
                                    "trace": int(ctx.trace)}, ctx.settle)
        try:
            ready = await ctx.drv.wait(rid, {"ready"}, 30)
            if ready["event"] != "ready":
                return {**out, "error": ready.get("error")}
            sent: dict[str, float] = {}
            plan = live_media.schedule(kind, ctx.said, 15.0)
            async with running(push_ffmpeg(proc, plan, sent)):
                ev = await ctx.drv.wait(rid, {"playing"}, 12)
            if ev["event"] != "playing":
                return {**out, "error": ev.get("error"), "errors": ev.get("errors")}
            show_trace(ev, sent["first"])
            return {**out, "ttfa": ev["t"] / 1000 - sent["first"],
                    "position": ev["currentTime"],
                    "hls_errors": _relative(ev.get("errors"), sent["first"])}
        finally:
            await ctx.drv.close(rid)


def _latency_summary(samples: list[dict[str, Any]], first: float) -> dict[str, Any]:
    by_pdt = [(s["t"] - s["pdt"]) / 1000 for s in samples if s.get("pdt")]
    by_push = [s["t"] / 1000 - (first + s["ct"]) for s in samples]
    return {"n": len(samples), "pdt": by_pdt, "push": by_push,
            "hls_latency": [s["latency"] for s in samples if s.get("latency") is not None]}


async def latency_sori(ctx: Ctx, rid: str, lead: float, seconds: float) -> dict[str, Any]:
    sid = f"lat-{rid}"
    await create_stream(ctx.session, ctx.sori, sid)
    out: dict[str, Any] = {"server": "sori"}
    sent: dict[str, float] = {}
    plan = live_media.realtime(ctx.said, lead + seconds + 25)
    try:
        async with running(push_origin(ctx.session, ctx.sori, sid, plan, sent)):
            await asyncio.sleep(lead)
            ctx.drv.open(rid, ctx.sori, {"src": f"/assets/{sid}/master.m3u8", "ll": 1,
                                         "start": -1, "sample": seconds}, ctx.settle)
            ev = await ctx.drv.wait(rid, {"samples"}, seconds + 30)
        rec = await asset(ctx.session, ctx.sori, sid)
        start = (rec.get("live") or {}).get("start") or sent.get("first", 0)
        if ev["event"] != "samples":
            return {**out, "error": ev.get("error"), "errors": ev.get("errors")}
        return {**out, **_latency_summary(ev["samples"], start), "waiting": ev["waiting"],
                "jumped": ev.get("jumped")}
    finally:
        await ctx.drv.close(rid)
        with contextlib.suppress(Exception):
            await end_stream(ctx.session, ctx.sori, sid)


async def latency_ffmpeg(ctx: Ctx, rid: str, lead: float, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"server": "ffmpeg+nginx"}
    sent: dict[str, float] = {}
    plan = live_media.realtime(ctx.said, lead + seconds + 25)
    async with ffmpeg_ref(ctx.www / "live" / rid) as proc:
        try:
            async with running(push_ffmpeg(proc, plan, sent)):
                await asyncio.sleep(lead)
                ctx.drv.open(rid, ctx.ngx, {"src": f"/live/{rid}/index.m3u8", "ll": 0,
                                            "start": -1, "sync": ctx.ref_sync, "retry": 1,
                                            "sample": seconds, "ready": "manifestLoading"},
                             ctx.settle)
                ev = await ctx.drv.wait(rid, {"samples"}, seconds + 30)
            if ev["event"] != "samples":
                return {**out, "error": ev.get("error"), "errors": ev.get("errors")}
            return {**out, **_latency_summary(ev["samples"], sent["first"]),
                    "waiting": ev["waiting"], "jumped": ev.get("jumped")}
        finally:
            await ctx.drv.close(rid)


async def browser_parts(args: argparse.Namespace, work: Path, said: list[bytes],
                        sori: str, ngx: str, www: Path) -> dict[str, Any]:
    import aiohttp

    out: dict[str, Any] = {"ttfa": [], "latency": []}
    async with aiohttp.ClientSession() as session, Driver() as drv:
        ctx = Ctx(drv, session, sori, ngx, www, said, args.settle, args.ref_sync, args.trace)
        async def ttfa_sori_retry(ctx: Ctx, kind: str, rid: str) -> dict[str, Any]:
            return await ttfa_sori(ctx, kind, rid, retry=True)

        servers = [("sori", ttfa_sori), ("sori-retry", ttfa_sori_retry),
                   ("ffmpeg+nginx", ttfa_ffmpeg)]
        if "ttfa" in args.parts:
            for i in range(args.runs + 1):  # run 0 warms up, uncounted
                for kind in ("realtime", "burst"):
                    order = servers if i % 2 == 0 else servers[::-1]
                    for name, fn in order:
                        rid = f"{kind[0]}{i}{name[0]}{len(name)}"
                        r = await fn(ctx, kind, rid)
                        r["warmup"] = i == 0
                        out["ttfa"].append(r)
                        shown = (f"{r['ttfa']:.3f} s at {r['position']:.2f}" if "ttfa" in r
                                 else f"error {r.get('error')} {r.get('errors') or ''}")
                        if r.get("hls_errors"):
                            shown += f" (hls.js: {', '.join(r['hls_errors'][-3:])})"
                        log(f"ttfa {kind:<8} {name:<12} run {i}{' (warm-up)' if i == 0 else ''}:"
                            f" {shown}")
        if "latency" in args.parts:
            for i in range(args.latency_runs):
                for name, lat in (("sori", latency_sori), ("ffmpeg+nginx", latency_ffmpeg)):
                    r = await lat(ctx, f"lat{i}{name[0]}", 3.0, args.latency_seconds)
                    out["latency"].append(r)
                    if "pdt" in r:
                        log(f"latency {name:<12} run {i}: median {statistics.median(r['pdt']):.3f}"
                            f" s (PDT), {statistics.median(r['push']):.3f} s (push clock), "
                            f"{r['waiting']} waiting events"
                            + (f", jumped from {r['jumped'][0]:.2f} to the live edge at "
                               f"{r['jumped'][1]:.2f} s" if r.get("jumped") else ""))
                    else:
                        log(f"latency {name} run {i}: error {r.get('error')} {r.get('errors')}")
    return out


# --- 3: streams at once ------------------------------------------------------------------


async def _run_job(module: str, sub: list[str], job: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", module, *sub, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    try:
        stdout, stderr = await proc.communicate(json.dumps(job).encode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(sub)} exited {proc.returncode}: "
                           f"{stderr.decode()[-2000:]}")
    return json.loads(stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def _gaps(arrivals: list[list[float]], pps: int, start_after: float,
          until: float) -> tuple[list[float], int]:
    """Gaps between successive new parts seen after `start_after` (epoch), and the count
    of parts seen."""
    seen: list[tuple[float, int]] = []
    last = -1
    for t, msn, k in arrivals:
        g = (int(msn) - 1) * pps + int(k)
        if g > last:
            seen.append((t, g))
            last = g
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:], strict=False)
            if a[0] >= start_after and b[0] <= until]
    return gaps, len(seen)


async def streams_step(args: argparse.Namespace, work: Path, k: int) -> dict[str, Any]:
    import aiohttp

    seconds, stagger = args.stream_seconds, args.stagger
    rungs = ("low", "medium", "high")
    with origin(work, f"k{k}") as server, TreeStats(server.proc.pid) as stats:
        await asyncio.sleep(1.0)
        idle_rss = stats.samples[-1][3] if stats.samples else 0
        async with aiohttp.ClientSession() as session:
            recs = await asyncio.gather(*(create_stream(session, server.base_url, f"k{k}-{i}")
                                          for i in range(k)))
        live = recs[0]["live"]
        pps = round(live["segment_duration"] / live["part_duration"])
        part_target = float(live["part_target"])
        t0 = time.time() + 2.0
        streams = []
        for i, rec in enumerate(recs):
            # Start times spread over `stagger` by the golden-ratio sequence, so that the
            # streams' 200 ms chunks arrive at phases spread over the chunk period too
            # (i * stagger / k would line every stream up on one phase when k divides 10).
            offset = stagger * ((i * 0.6180339887498949) % 1.0)
            streams.append({"id": rec["id"], "offset": offset, "until": offset + seconds,
                            "rotate": i, "kind": "realtime",
                            "url": f"{server.base_url}/assets/{rec['id']}/v/{rec['version']}/"
                                   f"{rungs[i % 3]}/index.m3u8"})
        busy0, wall0, e0 = system_cpu()[0], time.monotonic(), time.time()
        follow, push = await asyncio.gather(
            _run_job("bench.live_load", ["follow"], {"t0": t0, "streams": streams}),
            _run_job("bench.live_load", ["push"], {"base": server.base_url, "t0": t0,
                                                   "seconds": seconds, "streams": streams}))
        busy1, wall, e1 = system_cpu()[0], time.monotonic() - wall0, time.time()
        hwm = vm_hwm(server.proc.pid)
    by_id = {s["id"]: s for s in streams}
    rows = []
    for f in follow["streams"]:
        s = by_id[f["id"]]
        arrivals = f["arrivals"]
        first = arrivals[0][0] if arrivals else t0 + s["offset"]
        gaps, parts = _gaps(arrivals, pps, first + 1.0, t0 + s["until"])
        rows.append({"id": f["id"], "parts": parts, "max_gap": max(gaps, default=float("nan")),
                     "p99_gap": pct(gaps, 0.99), "gaps": len(gaps),
                     "errors": f["error_count"], "error_samples": f["errors"]})
    steady0, steady1 = t0 + stagger + 1.0, t0 + seconds
    py_cores, ff_cores, _span = stats.cpu_between(steady0, steady1)
    limit = part_target + CADENCE_SLACK
    keep = [r for r in rows if r["gaps"] > 0 and r["max_gap"] <= limit]
    all_gaps_max = [r["max_gap"] for r in rows]
    if os.environ.get("LIVE_BENCH_DUMP"):
        Path(os.environ["LIVE_BENCH_DUMP"]).write_text(json.dumps({"follow": follow, "push": push,
                                                                   "t0": t0, "pps": pps}))
    return {
        "k": k, "keep": len(keep), "all_keep": len(keep) == k, "limit": limit,
        "part_target": part_target,
        "worst_max_gap": max(all_gaps_max, default=float("nan")),
        "median_max_gap": statistics.median(all_gaps_max) if all_gaps_max else float("nan"),
        "worst_p99_gap": max((r["p99_gap"] for r in rows), default=float("nan")),
        "py_cores": py_cores, "ffmpeg_cores": ff_cores,
        "machine_cores": (busy1 - busy0) / wall,
        "client_cores": (push["cpu"] + follow["cpu"]) / wall,
        "origin_cores_all": sum(stats.cpu_between(e0, e1)[:2]),
        "peak_rss": stats.peak_rss, "peak_pss": stats.peak_pss, "idle_rss": idle_rss,
        "origin_hwm": hwm,
        "encoders": stats.peak_children,
        "push_late_max": max(p["late_max"] for p in push["streams"]),
        "push_unsent": sum(p["unsent"] for p in push["streams"]),
        "push_resp_p99": max(p["resp_p99"] for p in push["streams"]),
        "push_errors": sum(p["error_count"] for p in push["streams"]),
        "follow_errors": sum(r["errors"] for r in rows),
        "follow_error_samples": [e for r in rows for e in r["error_samples"]][:3],
        "push_error_samples": [e for p in push["streams"] for e in p["errors"]][:3],
    }


def encoder_ceiling(said: list[bytes], seconds: float = 60.0) -> dict[str, Any]:
    """How many live encoders (the origin's own ffmpeg command: limiter, asplit, one AAC
    encoder per rung of the default ladder) this machine's cores run at real time: encode
    `seconds` of speech as fast as possible and divide."""
    import numpy as np

    from packager.live.encoder import encoder_args
    from settings import PackagerConfig

    cfg = PackagerConfig()
    pcm = live_media.realtime(said, seconds)
    data = np.frombuffer(b"".join(c for _, c in pcm), dtype="<i2").astype("<f4") / 32768.0
    sinks = [os.open(os.devnull, os.O_WRONLY) for _ in cfg.audio_ladder]
    try:
        cmd = encoder_args(live_media.RATE, live_media.CHANNELS, list(cfg.audio_ladder),
                           cfg.aac_coder, cfg.true_peak, sinks)
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, pass_fds=sinks,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        try:
            proc.stdin.write(data.tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"the live encoder command exited {proc.returncode}")
    finally:
        for fd in sinks:
            os.close(fd)
    cpu = usage.ru_utime + usage.ru_stime
    cores = os.cpu_count() or 1
    return {"media_seconds": seconds, "cpu": cpu, "wall": wall,
            "cpu_per_stream": cpu / seconds, "streams": cores * seconds / cpu,
            "max_rss": usage.ru_maxrss * 1024}


# --- 4: listeners --------------------------------------------------------------------------


class Listeners:
    """`procs` listener processes (bench/live_listeners.py) holding `total` connections."""

    def __init__(self, host: str, port: int, path: str, total: int, procs: int,
                 pps: int) -> None:
        self.job = {"host": host, "port": port, "path": path, "pps": pps, "timeout": 30}
        self.share = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
        self.children: list[asyncio.subprocess.Process] = []
        self.connected = self.failed = 0

    async def __aenter__(self) -> Listeners:
        try:
            for n in self.share:
                self.children.append(await asyncio.create_subprocess_exec(
                    PY, "-m", "bench.live_listeners", json.dumps({**self.job, "connections": n}),
                    cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, limit=1 << 26))
            for got in await self._read_all():
                self.connected += got["connected"]
                self.failed += got["failed"]
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.children:
            with contextlib.suppress(Exception):
                assert c.stdin is not None
                c.stdin.write(b'{"stop": true}\n')
                await c.stdin.drain()
        for c in self.children:
            try:
                await asyncio.wait_for(c.wait(), 10)
            except TimeoutError:
                c.kill()
                await c.wait()

    async def _read_all(self) -> list[dict[str, Any]]:
        out = []
        for c in self.children:
            assert c.stdout is not None and c.stderr is not None
            line = await asyncio.wait_for(c.stdout.readline(), 120)
            if not line:
                raise RuntimeError("a listener process failed: "
                                   + (await c.stderr.read()).decode()[-1500:])
            out.append(json.loads(line))
        return out

    async def round(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send `command` to every process; the round's figures: from the first answer
        to each answer (seconds), how many requests were out before the first answer
        (held), and the statuses other than 200."""
        message = (json.dumps(command) + "\n").encode()
        for c in self.children:
            assert c.stdin is not None
            c.stdin.write(message)
            await c.stdin.drain()
        outs = await self._read_all()
        arrived = [t for o in outs for t in o["arrived"]]
        sent = [t for o in outs for t in o["sent"]]
        first = min(arrived) if arrived else float("nan")
        statuses: dict[str, int] = {}
        for o in outs:
            for k, v in o["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        return {"delays": [t - first for t in arrived], "sent": len(sent),
                "answered": len(arrived), "held": sum(1 for t in sent if t < first),
                "send_spread": (max(sent) - min(sent)) if sent else 0.0,
                "statuses": statuses, "timed_out": any(o["timed_out"] for o in outs)}


def listen_summary(rounds: list[dict[str, Any]], connected: int) -> dict[str, Any]:
    delays = [d for r in rounds for d in r["delays"]]
    round_max = [max(r["delays"]) for r in rounds if r["delays"]]
    statuses: dict[str, int] = {}
    for r in rounds:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    return {"connected": connected, "rounds": len(rounds),
            "p50": pct(delays, 0.5), "p99": pct(delays, 0.99),
            "max": max(delays, default=float("nan")),
            "round_max": round_max,
            "held_min": min((r["held"] for r in rounds), default=0),
            "answered_min": min((r["answered"] for r in rounds), default=0),
            "send_spread_max": max((r["send_spread"] for r in rounds), default=0.0),
            "bad": sum(statuses.values()), "statuses": statuses,
            "timed_out": any(r["timed_out"] for r in rounds)}


async def listeners_part(args: argparse.Namespace, work: Path, ngx: Server,
                         www: Path) -> dict[str, Any]:
    import aiohttp

    total, procs, rounds, lead = (args.listeners, args.listener_procs, args.listen_rounds,
                                  args.listen_lead)
    out: dict[str, Any] = {}
    with origin(work, "listen") as server, TreeStats(server.proc.pid) as stats:
        host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as session:
            rec = await create_stream(session, server.base_url, "listen")
            live = rec["live"]
            pps = round(live["segment_duration"] / live["part_duration"])
            path = f"/assets/listen/v/{rec['version']}/low/index.m3u8"
            t0 = time.time() + 0.5
            pusher = asyncio.create_task(_run_job("bench.live_load", ["push"], {
                "base": server.base_url, "t0": t0, "seconds": 600.0,
                "streams": [{"id": "listen", "offset": 0.0, "kind": "realtime"}]}))
            try:
                await asyncio.sleep(2.5)

                async def landed(after: int | None) -> tuple[int, str]:
                    """The last part (global index) once a part after `after` exists."""
                    query = {}
                    if after is not None:
                        nxt = after + 1
                        query = {"_HLS_msn": str(nxt // pps + 1), "_HLS_part": str(nxt % pps)}
                    async with session.get(server.base_url + path, params=query) as r:
                        text = await r.text()
                    found = last_part(text)
                    assert found is not None, text
                    return (found[0] - 1) * pps + found[1], text

                log(f"listeners: {total} connections, blocking requests on one stream ...")
                async with Listeners(host, port, path, total, procs, pps) as crowd:
                    g, text = await landed(None)
                    results = []
                    cpu0 = stats.samples[-1]
                    for _ in range(rounds):
                        # Right after a part lands, everyone asks for the part `lead`
                        # parts on: all are waiting before it lands.
                        g, text = await landed(g)
                        results.append(await crowd.round({"part": g + lead}))
                        g, text = await landed(g + lead - 1)
                    cpu1 = stats.samples[-1]
                    out["blocking"] = listen_summary(results, crowd.connected)
                    out["blocking"]["origin_cores"] = ((cpu1[1] - cpu0[1])
                                                       / max(1e-9, cpu1[0] - cpu0[0]))
                    log(f"listeners: {total} plain GETs at once, origin ...")
                    results = [await crowd.round({"at": time.time() + 0.1})
                               for _ in range(rounds)]
                    out["plain-sori"] = listen_summary(results, crowd.connected)
                out["origin_peak_rss"] = stats.peak_rss
            finally:
                pusher.cancel()
                with contextlib.suppress(BaseException):
                    await pusher
    static = www / "static"
    static.mkdir(exist_ok=True)
    (static / "index.m3u8").write_text(text)
    nport = int(ngx.base_url.rsplit(":", 1)[1])
    log(f"listeners: {total} plain GETs at once, nginx ...")
    async with Listeners("127.0.0.1", nport, "/static/index.m3u8", total, procs, pps) as crowd:
        results = [await crowd.round({"at": time.time() + 0.1}) for _ in range(rounds)]
        out["plain-nginx"] = listen_summary(results, crowd.connected)
    return out


# --- report ----------------------------------------------------------------------------


def _ms(v: float) -> str:
    return f"{v * 1000:6.0f}" if v == v else f"{'-':>6}"


def _s(v: float | None) -> str:
    return f"{v:6.2f}" if v is not None and v == v else f"{'-':>6}"


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    ttfa = [r for r in results.get("ttfa", []) if not r.get("warmup")]
    for kind in ("realtime", "burst"):
        for server in ("sori", "sori-retry", "ffmpeg+nginx"):
            rs = [r for r in ttfa if r["kind"] == kind and r["server"] == server]
            ok = [r["ttfa"] for r in rs if "ttfa" in r]
            summary[f"ttfa/{kind}/{server}"] = {
                "runs": len(rs), "ok": len(ok),
                "median": statistics.median(ok) if ok else None,
                "min": min(ok, default=None), "max": max(ok, default=None),
                "position_max": max((r["position"] for r in rs if "position" in r), default=None),
                "errors": sorted({str(r.get("error")) for r in rs if "error" in r})}
    for server in ("sori", "ffmpeg+nginx"):
        rs = [r for r in results.get("latency", []) if r["server"] == server and "pdt" in r]
        pdt = [v for r in rs for v in r["pdt"]]
        push = [v for r in rs for v in r["push"]]
        if rs:
            summary[f"latency/{server}"] = {
                "runs": len(rs), "samples": len(pdt),
                "median": statistics.median(pdt) if pdt else None, "p90": pct(pdt, 0.9),
                "push_median": statistics.median(push) if push else None,
                "push_p90": pct(push, 0.9), "waiting": sum(r["waiting"] for r in rs)}
    return summary


def print_report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    summary = summarise(results)
    results["summary"] = summary
    cores = os.cpu_count()
    load = results.get("load", {})
    print(f"\nLive benchmark, {dt.date.today().isoformat()}, {platform.node()}: {cores} cores, "
          "1-minute load average at the start of each part: "
          + ", ".join(f"{k} {v:.1f}" for k, v in load.items())
          + (f"; origin settings {' '.join(args.set)}" if args.set else ""))
    if "ttfa" in args.parts:
        print(f"\n1. time to first audio: first byte accepted -> hls.js `playing` "
              f"(seconds; median [min-max] of {args.runs} runs; target <= {TTFA_TARGET}, "
              f"floor {TTFA_FLOOR})")
        columns = (("sori", "sori, hls.js defaults"), ("sori-retry", "sori, retry 50 ms"),
                   ("ffmpeg+nginx", "ffmpeg hls+nginx (ref)"))
        print(f"{'producer':<10}" + "".join(f"{label:>25}" for _, label in columns)
              + f" {'sori/ref':>9}  verdict")

        def cell(x: dict[str, Any]) -> str:
            if x["median"] is None:
                return f"{'failed':>25}"
            text = f"{x['median']:6.3f} [{x['min']:.2f}-{x['max']:.2f}]"
            if x["ok"] != x["runs"]:
                text += f" {x['ok']}/{x['runs']} ok"
            return text.rjust(25)

        for kind in ("realtime", "burst"):
            xs = [summary[f"ttfa/{kind}/{server}"] for server, _ in columns]
            a, ref = xs[0], xs[-1]
            ratio = (f"{a['median'] / ref['median']:8.2f}x" if a["median"] and ref["median"]
                     else f"{'':>9}")
            print(f"{kind:<10}" + "".join(cell(x) for x in xs) + f" {ratio}  "
                  f"{verdict(a['median'], TTFA_TARGET, TTFA_FLOOR)}")
            for x, (server, _) in zip(xs, columns, strict=True):
                for e in x["errors"]:
                    print(f"    {server} error: {e[:160]}")
        pos = [summary[f"ttfa/{k}/{s}"]["position_max"] for k in ("realtime", "burst")
               for s in ("sori", "sori-retry")]
        print("(playhead at `playing`: at most "
              f"{max((p for p in pos if p is not None), default=float('nan')):.2f} s; "
              "\"retry 50 ms\": the page retries a playlist it cannot use every 50 ms, as the "
              "reference's page does while ffmpeg has not written one yet)")
    if "latency" in args.parts:
        print(f"\n2. latency at the live edge, real-time producer: wall clock - PROGRAM-DATE-TIME "
              f"of the playhead (seconds, sampled every 0.5 s for {args.latency_seconds:.0f} s; "
              f"target <= {LATENCY_TARGET}, floor {LATENCY_FLOOR})")
        print(f"{'server':<28} {'median':>7} {'p90':>7} {'push clock':>11} {'stalls':>7}  verdict")
        for server, label in (("sori", "sori (lowLatencyMode)"),
                              ("ffmpeg+nginx", f"ffmpeg hls + nginx (sync {args.ref_sync})")):
            x = summary.get(f"latency/{server}")
            if x is None:
                print(f"{label:<28} failed: " + "; ".join(
                    str(r.get("error")) for r in results.get("latency", [])
                    if r["server"] == server))
                continue
            v = verdict(x["median"], LATENCY_TARGET, LATENCY_FLOOR) if server == "sori" else ""
            print(f"{label:<28} {_s(x['median']):>7} {_s(x['p90']):>7} "
                  f"{_s(x['push_median']):>11} {x['waiting']:>7}  {v}")
        print("(push clock: wall clock - (first byte + playhead media time); stalls: `waiting` "
              "events after `playing`)")
    if "streams" in args.parts and results.get("streams"):
        ceiling = results.get("encoder_ceiling", {})
        print(f"\n3. streams at once (one origin, workers = {ORIGIN_ENV.get('SORI_ORIGIN_WORKERS', '1')}, "
              f"{args.stream_seconds:.0f} s each, "
              f"real time; keeps cadence = every gap between new parts after the first second "
              f"<= PART-TARGET + {CADENCE_SLACK} s)")
        print(f"{'K':>4} {'keep':>6} {'max gap':>8} {'med max':>8} {'p99 gap':>8} "
              f"{'py cores':>9} {'ffmpeg':>7} {'clients':>8} {'others':>7} {'peak RSS':>9} "
              f"{'per strm':>9} {'push late':>10} {'errors':>7}")
        for s in results["streams"]:
            others = max(0.0, s["machine_cores"] - s["origin_cores_all"] - s["client_cores"])
            print(f"{s['k']:>4} {s['keep']:>3}/{s['k']:<2} {_ms(s['worst_max_gap']):>8} "
                  f"{_ms(s['median_max_gap']):>8} {_ms(s['worst_p99_gap']):>8} "
                  f"{s['py_cores']:9.2f} {s['ffmpeg_cores']:7.2f} {s['client_cores']:8.2f} "
                  f"{others:7.2f} {s['peak_rss'] / MB:7.0f}MB {s['peak_rss'] / MB / s['k']:7.1f}MB "
                  f"{_ms(s['push_late_max']):>8}ms "
                  f"{s['push_errors'] + s['follow_errors'] + s['push_unsent']:>7}")
        best = max((s["k"] for s in results["streams"] if s["all_keep"]), default=0)
        results["streams_best"] = best
        limit = results["streams"][0]["limit"]
        print(f"(gaps in ms; limit {limit * 1000:.0f} ms; cores in the steady part of the "
              f"step: the origin's Python process, its ffmpeg encoders, the push and follow "
              f"processes, and everything else on the machine; peak RSS: the origin process + "
              f"its encoders, summed; errors include chunks a held-back pusher gave up on)")
        line = (f"largest K with every stream keeping cadence: {best} (target >= "
                f"{STREAMS_TARGET}, floor {STREAMS_FLOOR}): "
                f"{verdict(best, STREAMS_TARGET, STREAMS_FLOOR, higher=True)}")
        if ceiling:
            line += (f"; reference, the live encoder alone: {ceiling['cpu_per_stream'] * 100:.1f}% "
                     f"of a core per stream -> {ceiling['streams']:.0f} streams on {cores} cores, "
                     f"{ceiling['max_rss'] / MB:.0f} MB RSS each")
        print(line)
        last = results["streams"][-1]
        print(f"memory at K = {last['k']}: the origin's Python process peaked at "
              f"{last['origin_hwm'] / MB:.0f} MB (VmHWM; {last['idle_rss'] / MB:.0f} MB idle), "
              f"{last['encoders']} encoders; summed PSS (shared library pages counted once) "
              f"peaked at {last['peak_pss'] / MB:.0f} MB = "
              f"{last['peak_pss'] / MB / last['k']:.1f} MB per stream")
    if "listeners" in args.parts and results.get("listeners"):
        L = results["listeners"]
        print(f"\n4. listeners waiting on one stream (one worker; delay from the first answer "
              f"for a part to each listener's answer, ms; target {LISTENERS_TARGET} held, "
              f"p99 <= {LISTEN_P99_TARGET * 1000:.0f} ms)")
        print(f"{'what':<38} {'conns':>6} {'held min':>9} {'p50':>6} {'p99':>6} {'max':>6} "
              f"{'med max':>8} {'rounds':>7} {'non-200':>8}  verdict")
        for key, label in (("blocking", "sori, blocking reload for a part"),
                           ("plain-sori", "sori, plain GET, all sent at once"),
                           ("plain-nginx", "nginx (1 worker), plain GET, at once")):
            x = L.get(key)
            if not x:
                continue
            held = f"{x['held_min']:>9}" if key == "blocking" else f"{'-':>9}"
            v = ""
            if key == "blocking":
                ok = x["held_min"] >= LISTENERS_TARGET and x["p99"] <= LISTEN_P99_TARGET
                v = "pass" if ok else "MISS"
            med = statistics.median(x["round_max"]) if x["round_max"] else float("nan")
            print(f"{label:<38} {x['connected']:>6} {held} {_ms(x['p50'])} {_ms(x['p99'])} "
                  f"{_ms(x['max'])} {_ms(med):>8} {x['rounds']:>7} {x['bad']:>8}  {v}")
        b = L.get("blocking")
        if b:
            print(f"(one round per part: held = requests out before the part's first answer; "
                  f"med max = median over rounds of the last answer; the origin used "
                  f"{b['origin_cores']:.2f} cores over the blocking rounds; non-200: "
                  f"{b['statuses'] or 'none'}; origin peak RSS "
                  f"{L.get('origin_peak_rss', 0) / MB:.0f} MB)")


async def amain(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    said = live_media.sentences()
    results: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                               "cores": os.cpu_count()}
    load = results["load"] = {}
    with nginx(work) as (ngx, www):
        if "ttfa" in args.parts or "latency" in args.parts:
            load["browser"] = os.getloadavg()[0]
            with origin(work, "browser") as sori:
                results.update(await browser_parts(args, work, said, sori.base_url,
                                                   ngx.base_url, www))
        if "streams" in args.parts:
            load["streams"] = os.getloadavg()[0]
            log("streams: the live encoder's own speed ...")
            results["encoder_ceiling"] = encoder_ceiling(said)
            results["streams"] = []
            for k in args.streams:
                log(f"streams: K = {k} ...")
                step = await streams_step(args, work, k)
                results["streams"].append(step)
                log(f"streams: K = {k}: {step['keep']}/{k} keep cadence, worst max gap "
                    f"{step['worst_max_gap'] * 1000:.0f} ms, origin {step['py_cores']:.2f} + "
                    f"{step['ffmpeg_cores']:.2f} cores, machine {step['machine_cores']:.2f}")
                if not step["all_keep"] and not args.keep_going:
                    break
        if "listeners" in args.parts:
            load["listeners"] = os.getloadavg()[0]
            results["listeners"] = await listeners_part(args, work, ngx, www)
        load["end"] = os.getloadavg()[0]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="time-to-first-audio runs per "
                    "producer and server (plus one warm-up)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"which parts to run (default all: {','.join(PARTS)})")
    ap.add_argument("--latency-runs", type=int, default=1)
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--ref-sync", type=int, default=2, help="hls.js liveSyncDurationCount "
                    "for the reference (segments of 1 s behind the live edge)")
    ap.add_argument("--streams", default="10,12,14,16,20,30,40",
                    help="K values to step through (stops after the first K where a stream "
                    "loses its cadence, unless --keep-going)")
    ap.add_argument("--stream-seconds", type=float, default=20.0)
    ap.add_argument("--keep-going", action="store_true", help="step through every K even "
                    "after one where a stream lost its cadence")
    ap.add_argument("--stagger", type=float, default=2.0, help="streams start spread over "
                    "this many seconds")
    ap.add_argument("--listeners", type=int, default=5000)
    ap.add_argument("--listener-procs", type=int, default=2)
    ap.add_argument("--listen-rounds", type=int, default=8,
                    help="parts the listeners wait for, one after another")
    ap.add_argument("--listen-lead", type=int, default=4,
                    help="the listeners ask, the moment a part lands, for the part this "
                    "many parts on (so that all are held before it lands)")
    ap.add_argument("--settle", type=int, default=1000, metavar="MS",
                    help="let each new browser window settle this long before the page opens")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a setting for every origin the benchmark starts (e.g. "
                    "live.segment_duration=0.7), passed as SORI_SECTION_KEY")
    ap.add_argument("--py-spy", metavar="DIR", type=Path,
                    help="record every origin with py-spy (on PATH, or SORI_PY_SPY) into "
                    "DIR/sori-NAME.txt (collapsed stacks)")
    ap.add_argument("--trace", action="store_true", help="print each time-to-first-audio "
                    "run's hls.js and <video> events, in ms from the first byte")
    ap.add_argument("--json", action="store_true", help="also print everything as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if bad := set(args.parts) - set(PARTS):
        raise SystemExit(f"bench: unknown part(s) {sorted(bad)}")
    args.streams = [int(k) for k in args.streams.split(",") if k.strip()]
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"bench: --set {item!r}: expected SECTION.KEY=VALUE")
        ORIGIN_ENV["SORI_" + key.replace(".", "_").upper()] = value
    for tool in ("node", "ffmpeg", "espeak-ng", NGINX):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is required")
    if not CHROMIUM.exists():
        raise SystemExit(f"bench: {CHROMIUM} is required (apt-get install chromium)")
    if not HLS_JS.exists():
        raise SystemExit(f"bench: {HLS_JS} is missing (npm ci in player/)")
    if args.py_spy:
        exe = os.environ.get("SORI_PY_SPY") or shutil.which("py-spy")
        if not exe:
            raise SystemExit("bench: --py-spy needs py-spy on PATH or SORI_PY_SPY")
        PROFILE.update(exe=exe, dir=args.py_spy.resolve())
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="sori-live-bench-"))
    try:
        try:
            import uvloop

            results = uvloop.run(amain(args, work))
        except ImportError:
            results = asyncio.run(amain(args, work))
        print_report(args, results)
        if args.json:
            print(json.dumps(results, indent=1, default=str))
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
